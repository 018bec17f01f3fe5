/*-------------------------------------------------------------------------
 *
 * module.h
 *	  rustydb's one _PG_init and the list of subsystem initialisers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_COMMON_MODULE_H
#define RUSTYDB_COMMON_MODULE_H

#define RUSTYDB_VERSION     "0.1.0"
#define RUSTYDB_VERSION_NUM 100 /* major * 10000 + minor * 100 + patch */

namespace rustydb {

/* True once _PG_init has completed in this process. */
bool module_loaded();

} /* namespace rustydb */

#endif /* RUSTYDB_COMMON_MODULE_H */
