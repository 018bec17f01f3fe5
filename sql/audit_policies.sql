-- Audit policies, the trail's guard and the settings of the audit
-- subsystem: deterministic SQL-level behaviour. (Records themselves are
-- checked by test/pgtap/audit.sql and test/scenarios/audit_*.sh, where the
-- audit worker writes to the test's database.)
CREATE TABLE audit_reg_t (id int);
CREATE ROLE audit_reg_user;

SELECT rustydb.create_audit_policy('p_dml', '{select,insert,update,delete}', '{audit_reg_t}');
SELECT rustydb.create_audit_policy('p_all', '{all}', NULL, '{audit_reg_user}', 'current_user IS NOT NULL');
SELECT policy_name, actions, objects, roles, condition, enabled FROM rustydb.audit_policies ORDER BY 1;

-- errors
SELECT rustydb.create_audit_policy('p_dml', '{select}');
SELECT rustydb.create_audit_policy('p_x', '{selects}');
SELECT rustydb.create_audit_policy('p_x', '{}');
SELECT rustydb.create_audit_policy('p_x', '{select}', '{no_such_table}');
SELECT rustydb.create_audit_policy('p_x', '{select}', NULL, '{no_such_role}');
SELECT rustydb.create_audit_policy('p_x', '{select}', NULL, NULL, '1 +');
SELECT rustydb.create_audit_policy('p_x', '{select}', NULL, NULL, 'now()');
SELECT rustydb.enable_audit_policy('nope');
SELECT rustydb.disable_audit_policy('nope');
SELECT rustydb.drop_audit_policy('nope');

-- enable, disable, drop
SELECT rustydb.disable_audit_policy('p_dml');
SELECT policy_name, enabled FROM rustydb.audit_policies ORDER BY 1;
SELECT rustydb.enable_audit_policy('p_dml');
SELECT rustydb.drop_audit_policy('p_all');
SELECT policy_name, enabled FROM rustydb.audit_policies ORDER BY 1;

-- audited statements still work (the records go to the audit database)
INSERT INTO audit_reg_t VALUES (1), (2);
UPDATE audit_reg_t SET id = id + 1;
SELECT * FROM audit_reg_t ORDER BY 1;
DELETE FROM audit_reg_t;

-- only superusers manage policies
SET ROLE audit_reg_user;
SELECT rustydb.create_audit_policy('p_user', '{select}');
SELECT * FROM rustydb.audit_trail;
RESET ROLE;

-- the trail is append-only, and lives in rustydb.audit_database
DELETE FROM rustydb._audit_records;
UPDATE rustydb._audit_anchor SET seq = 0;
TRUNCATE rustydb._audit_records;
INSERT INTO rustydb._audit_records (seq) VALUES (1);
SELECT rustydb.purge_audit_trail(now());
SELECT * FROM rustydb.verify_audit_trail();

-- settings
SET rustydb.audit_overflow = 'drop';
SET rustydb.transaction_timeout = -1;
SET rustydb.transaction_timeout = '5s';
SHOW rustydb.transaction_timeout;
RESET rustydb.transaction_timeout;

-- the memory view
SELECT name, kind, "limit" IS NOT NULL AS has_limit, limit_setting
FROM rustydb.memory WHERE name LIKE 'rustydb audit%' ORDER BY name;

SELECT rustydb.drop_audit_policy('p_dml');
DROP TABLE audit_reg_t;
DROP ROLE audit_reg_user;
