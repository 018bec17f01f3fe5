/*-------------------------------------------------------------------------
 *
 * am.h
 *	  Internal interfaces of the rustydb table access method.
 *
 * handler.cpp holds the TableAmRoutine; the callbacks live in one file per
 * concern:
 *
 *	modify.cpp	insert, multi-insert, delete, update, speculative
 *				insertion
 *	rowlock.cpp	row locks (tuple_lock), newer versions of an updated row
 *	xmax.cpp	who holds a row: xmax composition, waiting, the first
 *				half of delete, update and lock (xmax.h)
 *	scan.cpp	sequential, parallel, TID-range, bitmap, sample and ANALYZE
 *				scans, index fetch, single-row fetch
 *	ddl.cpp		new storage, the metapage, truncate, copy, CLUSTER/VACUUM
 *				FULL, index build and validation, TOAST, size estimates
 *	prune.cpp	pruning: on access and in VACUUM
 *	vacuum.cpp	VACUUM, freezing, the visibility map, index tuple deletion
 *	verify.cpp	rustydb.verify_table()
 *	verify_payloads.cpp	the payload verifier of rustydb.verify_encryption()
 *	tuple.cpp	tuples as a page stores them: sealed and opened
 *				(encrypted tables), the slot type, slots filled
 *	groups.cpp	sealed groups of encrypted tables (groups.h)
 *	reencrypt.cpp	the re-encrypter of rustydb.rotate_table_key()
 *	recover.cpp	rustydb.recover_heap_pages(): a table over heap files rebuilt
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_AM_AM_H
#define RUSTYDB_AM_AM_H

#include "rustydb/am/pgincludes.h"
#include "rustydb/common/hooks.h"
#include "rustydb/storage/changes.h"

namespace rustydb::crypto { /* crypto/crypto.h */
struct Cipher;
struct ValueFreeSample;
enum class AnalyzeSample : uint8_t;
} /* namespace rustydb::crypto */

namespace rustydb::am {

/* Register the WAL resource manager, the payload verifier, the re-encrypter, logical decoding
 * and the undo counters' shared memory; from _PG_init. */
void init();

/* Register verify_payloads.cpp's verifier with the encryption subsystem. */
void register_payload_verifier();

/* Register reencrypt.cpp's table rewrite as rotate_table_key's re-encrypter. */
void register_reencrypter();

/* ---- stored tuples (tuple.cpp) ----
 *
 * The one place a tuple is made into what a page stores and read back
 * from it (docs/tde.md, "Integration"): for an encrypted relation, large
 * values are sealed before the toaster, the payload after it, and a page
 * tuple is opened into a plaintext copy; for an unencrypted one the same
 * calls hand tuples through unchanged. The write paths (modify.cpp,
 * CLUSTER through insert_raw) and the read paths (scan.cpp, modify.cpp)
 * call only these; sealed groups (groups.cpp) are the form COPY writes,
 * placed through seal_onto_page and opened through open_from_page.
 * Pruning re-seals a group's survivors (groups.h, prepare_group_changes)
 * and verify_encryption tries payloads without raising errors
 * (verify_payloads.cpp); nothing else seals or opens.
 */

/*
 * The tuple of slot to be inserted or to replace a row: header plus the
 * contiguous attribute payload, in plaintext (see stored_form).
 */
HeapTuple tuple_form(Relation rel, TupleTableSlot *slot, bool *should_free);

/*
 * A new tuple as the page stores it: large values sealed (encrypted
 * relations), toasted if needed, and the payload sealed unless
 * seal_payload is false (COPY seals payloads in groups, seal_onto_page).
 * Returns tup itself when nothing changes, else a palloc'd tuple
 * (intermediate copies are freed, tup never).
 */
HeapTuple stored_form(Relation rel, HeapTuple tup, int options, bool seal_payload = true);

/*
 * The steps of stored_form, for UPDATE, which toasts between them with the
 * old version at hand. c: relation_cipher(rel), loaded before any buffer
 * lock; nullptr for an unencrypted relation, when each returns its
 * argument. seal_large_values: before the toaster (the toaster writes
 * into a heap TOAST table, so values must be ciphertext by then); tup or
 * a new tuple. seal_for_page: after it; plain or a new tuple.
 * stored_size: the bytes a tuple of plain_len takes on the page when
 * sealed on its own.
 */
HeapTuple seal_large_values(Relation rel, const crypto::Cipher *c, HeapTuple tup);
HeapTuple seal_for_page(const crypto::Cipher *c, HeapTuple plain);
Size stored_size(const crypto::Cipher *c, Size plain_len);

/*
 * COPY into an encrypted relation: place tuples[0..n) (from stored_form
 * with seal_payload false) on the exclusively locked page of buf, in
 * sealed groups of up to max_members while the page has group slots, the
 * rest sealed on their own; groups.h, place_sealed, says how.
 */
int seal_onto_page(Relation rel, const crypto::Cipher *c, Buffer buf, HeapTuple *tuples, int n,
				   Size save, int max_members, char *scratch, OffsetNumber *offs, char **changes,
				   Size *changes_len);

struct OpenedGroups; /* groups.h */

/*
 * The attribute payload of a page tuple in plaintext, large values as
 * stored (sealed, for the toaster and for comparing attributes): stored
 * itself for an unencrypted relation, else a palloc'd copy. buf: the page,
 * pinned; locked: the caller holds its content lock; og: the opened
 * groups to use (a scan's or an index fetch's), nullptr for the
 * backend's. stored may also be an undo image the chain walk returned (a
 * copy, not on buf's page; docs/storage.md, "In-place updates and undo"):
 * sealed on its own, it is opened on its own, past the groups and the
 * cache of opened payloads, which hold the page's rows.
 */
HeapTuple open_from_page(Relation rel, const crypto::Cipher *c, HeapTuple stored, Buffer buf,
						 bool locked, OpenedGroups *og = nullptr);

/*
 * The slot type the executor gets for rel (slot_callbacks): a
 * buffer-heap-tuple slot, which points into the pinned page, for an
 * unencrypted relation; a heap-tuple slot, which owns the plaintext copy
 * and holds no pin, for an encrypted one (docs/tde.md, "Slots").
 */
const TupleTableSlotOps *slot_ops(Relation rel);

/*
 * Hand a page tuple to slot (pinned: the caller's pin on buf is passed
 * on). Unencrypted relation: the slot (a buffer slot) points at the page
 * tuple and pins buf. Encrypted: the slot gets the fully opened copy
 * (large values too) allocated in its memory context, as a materialized
 * tuple it frees; it holds no pin, and a passed pin is released. The
 * shared buffer never holds plaintext. Only tuple's HeapTupleData is
 * read, so the caller's may be a local variable. groups, locked: as for
 * open_from_page. open_values false: large values stay sealed (see
 * open_slot_values).
 */
void store_tuple(Relation rel, HeapTuple tuple, TupleTableSlot *slot, Buffer buf, bool pinned,
				 OpenedGroups *groups = nullptr, bool locked = false, bool open_values = true);

/*
 * open_values false left an encrypted row's large values sealed in slot
 * (ScanDesc.values_deferred): open them now, the slot getting the full row.
 * For a consumer that has judged the version live or recently dead (its
 * TOAST chunks are then still there). No-op for rows without sealed values.
 */
void open_slot_values(Relation rel, TupleTableSlot *slot);

/*
 * The stored version of the row in slot, which this access method filled:
 * returns true with its buffer pinned and share-locked and *tuple
 * pointing at it on the page. A buffer slot has the pin and the page
 * tuple; other slots (an encrypted relation's opened copy) are followed
 * by their TID, and false is returned when that line pointer no longer
 * holds the version (same raw xmin): it was pruned, so it is dead to
 * every snapshot. The caller unlocks and releases the buffer.
 */
bool lock_slot_version(Relation rel, TupleTableSlot *slot, HeapTuple tuple, Buffer *buf);

/* Does tuple point into buf's page (not a copy, such as an undo image)? */
bool tuple_on_page(HeapTuple tuple, Buffer buf);

/* ---- scans (scan.cpp) ---- */

struct ScanDesc
{
	TableScanDescData base;
	BlockNumber nblocks;    /* blocks at scan start */
	BlockNumber startblock; /* first block of a non-parallel scan */
	BlockNumber numblocks;  /* limit set by heap_setscanlimits-like callers */
	BlockNumber cblock;     /* current block, or InvalidBlockNumber */
	Buffer cbuf;            /* pinned current buffer */
	bool inited;
	BufferAccessStrategy strategy;
	HeapTupleData ctup; /* current tuple */
	int cindex;         /* index into vistuples */
	int ntuples;        /* visible tuples on the current page */
	OffsetNumber vistuples[MaxHeapTuplesPerPage];
	/*
	 * Page mode: each collected row's line pointer as it was when judged
	 * (an in-place update moves a line pointer under the exclusive lock)
	 * and, when the version the snapshot sees is an undo image, a copy of
	 * it in chaincxt (reset per page; docs/storage.md, "Page-mode scans
	 * capture line pointers").
	 */
	ItemIdData visitems[MaxHeapTuplesPerPage];
	HeapTuple viscopies[MaxHeapTuplesPerPage];
	MemoryContext chaincxt; /* created on first use */
	ParallelBlockTableScanWorkerData *pscanwork;
	/* TID range */
	ItemPointerData mintid;
	ItemPointerData maxtid;
	OpenedGroups *groups; /* encrypted relations: opened sealed groups */
	/*
	 * Set by a consumer of a SnapshotAny scan (CLUSTER, index builds): an
	 * encrypted row's large values stay sealed in the slot until the
	 * consumer has judged the version and calls open_slot_values, because
	 * a version dead to everyone may have lost its TOAST chunks.
	 */
	bool values_deferred;
	/*
	 * Encrypted relations: the rows of the current page opened (or copied
	 * from the cache of opened payloads) into a scan-owned buffer, handed
	 * to heap-tuple slots without a copy; two buffers alternate by page,
	 * wiped when reused and at the end (scan.cpp, plain_row).
	 */
	const crypto::Cipher *cipher;
	MemoryContext plaincxt;
	char *plainbuf[2];
	Size plainused[2];
	int plaincur;
	BlockNumber plainblock;
	bool plainbatch; /* the page's visible rows are in vistuples: open them at once */
	uint16 plainat[MaxHeapTuplesPerPage + 1]; /* offset -> position in the buffer + 1 */
	/* ANALYZE of an encrypted relation under tde_statistics = value_free */
	crypto::AnalyzeSample sample;
	crypto::ValueFreeSample *valuefree;
};

TableScanDesc scan_begin(Relation rel, Snapshot snapshot, int nkeys, ScanKey key,
						 ParallelTableScanDesc pscan, uint32 flags);
void scan_end(TableScanDesc scan);
void scan_rescan(TableScanDesc scan, ScanKey key, bool set_params, bool allow_strat,
				 bool allow_sync, bool allow_pagemode);
bool scan_getnextslot(TableScanDesc scan, ScanDirection direction, TupleTableSlot *slot);
void scan_set_tidrange(TableScanDesc scan, ItemPointer mintid, ItemPointer maxtid);
bool scan_getnextslot_tidrange(TableScanDesc scan, ScanDirection direction, TupleTableSlot *slot);

IndexFetchTableData *index_fetch_begin(Relation rel);
void index_fetch_reset(IndexFetchTableData *scan);
void index_fetch_end(IndexFetchTableData *scan);
/* As ScanDesc.values_deferred, for an index fetch (CLUSTER by an index). */
void index_fetch_defer_values(IndexFetchTableData *scan);
bool index_fetch_tuple(IndexFetchTableData *scan, ItemPointer tid, Snapshot snapshot,
					   TupleTableSlot *slot, bool *call_again, bool *all_dead);

bool fetch_row_version(Relation rel, ItemPointer tid, Snapshot snapshot, TupleTableSlot *slot);
void get_latest_tid(TableScanDesc scan, ItemPointer tid);
bool tuple_tid_valid(TableScanDesc scan, ItemPointer tid);
bool tuple_satisfies_snapshot(Relation rel, TupleTableSlot *slot, Snapshot snapshot);

/*
 * Heap-only versions: find the member of the version chain at *tid (same
 * page) visible to snapshot; *tid is set to it. Buffer pinned and
 * share-locked. first_call: *tid is the chain's root (an index entry);
 * otherwise it is the member returned last and the search continues
 * after it. *all_dead (optional) reports whether the whole chain is dead
 * to everyone; *latest_removed (optional) is advanced over its members.
 */
bool hot_search(Relation rel, Buffer buffer, ItemPointer tid, Snapshot snapshot, HeapTuple tuple,
				bool *all_dead, bool first_call, TransactionId *latest_removed = nullptr);

/* For each offset of the page, the root of its version chain (0: none). */
void get_root_offsets(Page page, OffsetNumber *roots);

/* Fetch tid if visible to snapshot: pinned buffer returned in *buf. */
bool fetch(Relation rel, Snapshot snapshot, HeapTuple tuple, Buffer *buf, bool keep_buf);

bool scan_analyze_next_block(TableScanDesc scan, BlockNumber blockno,
							 BufferAccessStrategy bstrategy);
bool scan_analyze_next_tuple(TableScanDesc scan, TransactionId oldest_xmin, double *liverows,
							 double *deadrows, TupleTableSlot *slot);
bool scan_bitmap_next_block(TableScanDesc scan, TBMIterateResult *tbmres);
bool scan_bitmap_next_tuple(TableScanDesc scan, TBMIterateResult *tbmres, TupleTableSlot *slot);
bool scan_sample_next_block(TableScanDesc scan, SampleScanState *scanstate);
bool scan_sample_next_tuple(TableScanDesc scan, SampleScanState *scanstate, TupleTableSlot *slot);

/* ---- modification (modify.cpp, rowlock.cpp) ---- */

void insert(Relation rel, HeapTuple tup, CommandId cid, int options, BulkInsertState bistate);
void multi_insert(Relation rel, TupleTableSlot **slots, int ntuples, CommandId cid, int options,
				  BulkInsertState bistate);
TM_Result remove(Relation rel, ItemPointer tid, CommandId cid, Snapshot snapshot,
				 Snapshot crosscheck, bool wait, TM_FailureData *tmfd, bool changing_part);
TM_Result update(Relation rel, ItemPointer otid, HeapTuple newtup, CommandId cid, Snapshot snapshot,
				 Snapshot crosscheck, bool wait, TM_FailureData *tmfd, LockTupleMode *lockmode,
				 bool *hot);
TM_Result lock_tuple(Relation rel, ItemPointer tid, Snapshot snapshot, TupleTableSlot *slot,
					 CommandId cid, LockTupleMode mode, LockWaitPolicy wait_policy, uint8 flags,
					 TM_FailureData *tmfd);
void finish_speculative(Relation rel, ItemPointer tid);
void abort_speculative(Relation rel, ItemPointer tid);

/* Insert a tuple with its header as given (CLUSTER, VACUUM FULL). */
void insert_raw(Relation rel, HeapTuple tup, BulkInsertState bistate);

/* ---- logical decoding support in row records (logical.cpp) ---- */

/*
 * What one row record carries for logical decoding (wal/records.h,
 * kFlagLogical): nothing unless wal_level = logical and the relation is
 * logically logged, as heap decides.
 */
struct LogicalTrailer
{
	bool logged = false;         /* kFlagLogical: the record carries a trailer */
	uint8 flags = 0;             /* the XlLogical byte */
	HeapTuple old_key = nullptr; /* UPDATE, DELETE: the old replica identity, stored form */
};

/* The trailer of an INSERT, MULTI_INSERT, CONFIRM or SUPER_DELETE of rel (c: its cipher). */
LogicalTrailer logical_trailer(Relation rel, const crypto::Cipher *c);

/*
 * The trailer of an UPDATE (newtup: the new version before TOAST) or a
 * DELETE (newtup nullptr) of oldplain, the old version's opened form: the
 * old replica identity as REPLICA IDENTITY asks (heap's rule: FULL always,
 * DEFAULT and USING INDEX when a key column changed or is stored out of
 * line, or on DELETE), sealed for an encrypted relation. Before the
 * critical section: it may read TOAST and allocate.
 */
LogicalTrailer logical_trailer_with_identity(Relation rel, const crypto::Cipher *c,
											 HeapTuple oldplain, HeapTuple newtup);

/* Register lt after the record's struct, in the record being assembled (if lt.logged). */
void register_logical_trailer(const LogicalTrailer &lt);

/* Free what logical_trailer_with_identity allocated. */
void free_logical_trailer(LogicalTrailer *lt);

/* Let logical decoding open encrypted tables' rows at apply time; from init(). */
void register_decoding();

/*
 * ProcessUtility step (publication.cpp): refuses user_catalog_table on a
 * rustydb table and publications naming rustydb's own tables.
 */
void hook_process_utility(hooks::UtilityCall &call);

/* ---- DDL (ddl.cpp) ---- */

/*
 * A pinned, exclusively locked page of rel with room for len bytes
 * (storage::buffer_for_tuple: its arguments and its lock order), creating
 * the metapage first when rel has no block yet.
 */
Buffer get_buffer_for_tuple(Relation rel, Size len, BulkInsertState bistate, Buffer other,
							int group_slots = 0);

/*
 * The room a page must keep free beside a new row of len bytes: what
 * fillfactor leaves, or, when more, room for one in-place version of that
 * row (len plus the undo pointer) if rustydb.inplace_reserve allows it, so
 * that the page's first in-place update needs no move (plain tables only).
 */
Size page_fill_reserve(Relation rel, Size len);

/*
 * Whether a page that receives a new row of rel must also keep the undo
 * pointer each of its rows would gain with its first in-place update (the
 * pointer reserve, rustydb.inplace_pointer_reserve; storage::buffer_for_tuple,
 * storage::page_pointer_room): a plain table whose rows may be updated in
 * place, as for page_fill_reserve. VACUUM records such a table's pages in
 * the free space map with that room taken off (storage::page_fsm_space).
 */
bool page_pointer_reserve(Relation rel);

/*
 * VACUUM's check of the metapage (storage::check_metapage); an all-zero
 * block 0 gets its metapage, WAL-logged.
 */
void check_metapage(Relation rel);

void relation_set_new_filenode(Relation rel, const RelFileNode *newrnode, char persistence,
							   TransactionId *freeze_xid, MultiXactId *minmulti);
void relation_nontransactional_truncate(Relation rel);
void relation_copy_data(Relation rel, const RelFileNode *newrnode);
void relation_copy_for_cluster(Relation old_rel, Relation new_rel, Relation old_index,
							   bool use_sort, TransactionId oldest_xmin, TransactionId *xid_cutoff,
							   MultiXactId *multi_cutoff, double *num_tuples, double *tups_vacuumed,
							   double *tups_recently_dead);
double index_build_range_scan(Relation table_rel, Relation index_rel, IndexInfo *index_info,
							  bool allow_sync, bool anyvisible, bool progress,
							  BlockNumber start_blockno, BlockNumber numblocks,
							  IndexBuildCallback callback, void *callback_state,
							  TableScanDesc scan);
void index_validate_scan(Relation table_rel, Relation index_rel, IndexInfo *index_info,
						 Snapshot snapshot, ValidateIndexState *state);
bool relation_needs_toast_table(Relation rel);
Oid relation_toast_am(Relation rel);
void estimate_rel_size(Relation rel, int32 *attr_widths, BlockNumber *pages, double *tuples,
					   double *allvisfrac);

/* ---- pruning (prune.cpp) ---- */

/* Prune the page if worthwhile and a cleanup lock is free; buffer pinned, unlocked. */
void prune_opt(Relation rel, Buffer buffer);

/* prune_page's result when sealed groups must be re-sealed but cipher is null */
constexpr int kPruneNeedsKey = -1;
/* ... when previous versions on the page must go to undo first and cannot (full store, no store given, parallel mode) */
constexpr int kPruneDeferred = -2;

/*
 * Prune one page (cleanup lock held): VACUUM with oldest_xmin, on-access
 * pruning with vistest. plain: the table is not encrypted
 * (crypto::relation_encrypted, asked before the buffer lock), so undo
 * pointers may be removed (a sealed tuple's associated data covers t_hoff).
 * undo: the table's undo store, opened (nullptr: none at hand), where
 * compaction moves the previous versions of in-place updates still on the
 * page that a snapshot may need. Returns the number of tuple versions
 * removed, or, changing nothing but repairs of aborted in-place versions
 * and moves to undo already done, kPruneNeedsKey (sealed groups of the
 * page lose members and must be re-sealed but cipher is null) or
 * kPruneDeferred. On-access pruning (oldest_xmin invalid) tells the
 * statistics how many dead tuples it removed, as heap's does; VACUUM
 * reports its own totals.
 */
int prune_page(Relation rel, Buffer buffer, GlobalVisState *vistest, TransactionId oldest_xmin,
			   const crypto::Cipher *cipher, bool plain, Relation undo);

/*
 * In the critical section of a PRUNE or VACUUM change c (made by
 * storage::prune_execute or vacuum_execute) to buffer's page: its record.
 */
void log_line_pointers(Relation rel, Buffer buffer, uint8 kind, const storage::PruneChanges &c,
					   TransactionId latest_removed);

/* ---- VACUUM (vacuum.cpp) ---- */

void relation_vacuum(Relation rel, VacuumParams *params, BufferAccessStrategy bstrategy);
TransactionId index_delete_tuples(Relation rel, TM_IndexDeleteOp *delstate);

/*
 * Freeze what can be frozen in one tuple header, writing the result into
 * *infomask, *infomask2, *xmax (a storage::FreezeEntry, installed by
 * storage::freeze_tuple) without changing the tuple. Returns true if
 * changed. Tracks the oldest xid / multixact left behind in *min_xid /
 * *min_multi.
 */
bool prepare_freeze(HeapTupleHeader t, TransactionId cutoff_xid, MultiXactId cutoff_multi,
					TransactionId oldest_xmin, TransactionId *min_xid, MultiXactId *min_multi,
					uint16 *infomask, uint16 *infomask2, TransactionId *xmax);

/* Lower *min to x when x is older (normal xids, valid multixacts only). */
void track_xid(TransactionId *min, TransactionId x);
void track_multi(MultiXactId *min, MultiXactId m);

} /* namespace rustydb::am */

#endif /* RUSTYDB_AM_AM_H */
