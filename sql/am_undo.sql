--
-- The undo store of in-place updates (docs/storage.md, "In-place updates
-- and undo"; in progress): its page, record and tuple-extension formats,
-- checked in memory by rustydb.selftest_undo().
--
CREATE EXTENSION IF NOT EXISTS rustydb;

-- every check passes (the first failure would be an ERROR naming it); the
-- count shows that none was skipped
SELECT rustydb.selftest_undo() AS checks_passed;

-- a superuser diagnostic
CREATE ROLE am_undo_user;
SET ROLE am_undo_user;
SELECT rustydb.selftest_undo();
RESET ROLE;
DROP ROLE am_undo_user;
