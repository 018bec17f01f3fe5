-- transparent data encryption: an encrypted rustydb table
CREATE TABLE demo_secrets (id int, secret text) USING rustydb WITH (encrypted = true);
INSERT INTO demo_secrets SELECT g, 'top secret number ' || g FROM generate_series(1, 1000) g;
SELECT count(*), min(secret) FROM demo_secrets;
SELECT "table", encrypted, key_version, cipher, created IS NOT NULL AS has_key
FROM rustydb.encryption_status WHERE "table" = 'demo_secrets'::regclass;
SELECT * FROM rustydb.verify_encryption('demo_secrets');
CHECKPOINT;
SELECT rustydb.rotate_master_key();
SELECT count(*) AS readable_after_master_key_rotation FROM demo_secrets;
