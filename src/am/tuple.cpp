/*-------------------------------------------------------------------------
 *
 * tuple.cpp
 *	  Where a rustydb tuple's payload is formed.
 *
 * A tuple is formed from a slot here and nowhere else; it is read back
 * from a page in storage::tuple_at (src/storage/page.cpp). These two are
 * the points where the encryption issue encrypts and decrypts the
 * contiguous attribute payload (bytes t_hoff .. t_len of the tuple).
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/am.h"

namespace rustydb::am {

HeapTuple
tuple_form(Relation rel, TupleTableSlot *slot, bool *should_free)
{
	HeapTuple tuple = ExecFetchSlotHeapTuple(slot, true, should_free);

	slot->tts_tableOid = RelationGetRelid(rel);
	tuple->t_tableOid = slot->tts_tableOid;
	return tuple;
}

} /* namespace rustydb::am */
