-- rustydb's version, build and settings
SELECT rustydb.version();
SELECT * FROM rustydb.build_info();
SELECT name, value, unit, min, max, restart_needed, description FROM rustydb.settings;
