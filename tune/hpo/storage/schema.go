package storage

// Optuna 3.1's RDB schema (alembic revision v3.0.0.d, schema_version 12),
// statement for statement as SQLAlchemy emits it, so that `.schema` of a
// ragtune database reads like one Optuna made. See optuna-facts.md 1.1/1.2.

const (
	schemaVersion = 12         // version_info.schema_version Optuna checks
	revision31    = "v3.0.0.d" // alembic head of Optuna 3.0/3.1
	revision32    = "v3.2.0.a" // alembic head of Optuna 3.2 … 5.0 (adds an index)
	libraryTag    = "3.1.0"    // version_info.library_version (informational)
)

var sqliteDDL = []string{
	"CREATE TABLE IF NOT EXISTS studies (\n\tstudy_id INTEGER NOT NULL, \n\tstudy_name VARCHAR(512) NOT NULL, \n\tPRIMARY KEY (study_id)\n)",
	"CREATE UNIQUE INDEX IF NOT EXISTS ix_studies_study_name ON studies (study_name)",
	"CREATE TABLE IF NOT EXISTS version_info (\n\tversion_info_id INTEGER NOT NULL, \n\tschema_version INTEGER, \n\tlibrary_version VARCHAR(256), \n\tPRIMARY KEY (version_info_id), \n\tCHECK (version_info_id=1)\n)",
	"CREATE TABLE IF NOT EXISTS study_directions (\n\tstudy_direction_id INTEGER NOT NULL, \n\tdirection VARCHAR(8) NOT NULL, \n\tstudy_id INTEGER NOT NULL, \n\tobjective INTEGER NOT NULL, \n\tPRIMARY KEY (study_direction_id), \n\tUNIQUE (study_id, objective), \n\tFOREIGN KEY(study_id) REFERENCES studies (study_id)\n)",
	"CREATE TABLE IF NOT EXISTS study_user_attributes (\n\tstudy_user_attribute_id INTEGER NOT NULL, \n\tstudy_id INTEGER, \n\t\"key\" VARCHAR(512), \n\tvalue_json TEXT, \n\tPRIMARY KEY (study_user_attribute_id), \n\tUNIQUE (study_id, \"key\"), \n\tFOREIGN KEY(study_id) REFERENCES studies (study_id)\n)",
	"CREATE TABLE IF NOT EXISTS study_system_attributes (\n\tstudy_system_attribute_id INTEGER NOT NULL, \n\tstudy_id INTEGER, \n\t\"key\" VARCHAR(512), \n\tvalue_json TEXT, \n\tPRIMARY KEY (study_system_attribute_id), \n\tUNIQUE (study_id, \"key\"), \n\tFOREIGN KEY(study_id) REFERENCES studies (study_id)\n)",
	"CREATE TABLE IF NOT EXISTS trials (\n\ttrial_id INTEGER NOT NULL, \n\tnumber INTEGER, \n\tstudy_id INTEGER, \n\tstate VARCHAR(8) NOT NULL, \n\tdatetime_start DATETIME, \n\tdatetime_complete DATETIME, \n\tPRIMARY KEY (trial_id), \n\tFOREIGN KEY(study_id) REFERENCES studies (study_id)\n)",
	"CREATE TABLE IF NOT EXISTS trial_user_attributes (\n\ttrial_user_attribute_id INTEGER NOT NULL, \n\ttrial_id INTEGER, \n\t\"key\" VARCHAR(512), \n\tvalue_json TEXT, \n\tPRIMARY KEY (trial_user_attribute_id), \n\tUNIQUE (trial_id, \"key\"), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE IF NOT EXISTS trial_system_attributes (\n\ttrial_system_attribute_id INTEGER NOT NULL, \n\ttrial_id INTEGER, \n\t\"key\" VARCHAR(512), \n\tvalue_json TEXT, \n\tPRIMARY KEY (trial_system_attribute_id), \n\tUNIQUE (trial_id, \"key\"), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE IF NOT EXISTS trial_params (\n\tparam_id INTEGER NOT NULL, \n\ttrial_id INTEGER, \n\tparam_name VARCHAR(512), \n\tparam_value FLOAT, \n\tdistribution_json TEXT, \n\tPRIMARY KEY (param_id), \n\tUNIQUE (trial_id, param_name), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE IF NOT EXISTS trial_values (\n\ttrial_value_id INTEGER NOT NULL, \n\ttrial_id INTEGER NOT NULL, \n\tobjective INTEGER NOT NULL, \n\tvalue FLOAT, \n\tvalue_type VARCHAR(7) NOT NULL, \n\tPRIMARY KEY (trial_value_id), \n\tUNIQUE (trial_id, objective), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE IF NOT EXISTS trial_intermediate_values (\n\ttrial_intermediate_value_id INTEGER NOT NULL, \n\ttrial_id INTEGER NOT NULL, \n\tstep INTEGER NOT NULL, \n\tintermediate_value FLOAT, \n\tintermediate_value_type VARCHAR(7) NOT NULL, \n\tPRIMARY KEY (trial_intermediate_value_id), \n\tUNIQUE (trial_id, step), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE IF NOT EXISTS trial_heartbeats (\n\ttrial_heartbeat_id INTEGER NOT NULL, \n\ttrial_id INTEGER NOT NULL, \n\theartbeat DATETIME NOT NULL, \n\tPRIMARY KEY (trial_heartbeat_id), \n\tUNIQUE (trial_id), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE IF NOT EXISTS alembic_version (\n\tversion_num VARCHAR(32) NOT NULL, \n\tCONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n)",
}

// PostgreSQL: native enum types, SERIAL keys, FLOAT(53), naive TIMESTAMP.
// Enum types have no IF NOT EXISTS, so creation runs under an advisory lock
// and checks pg_type first (see createSchema).
var postgresEnums = map[string]string{
	"studydirection":             "CREATE TYPE studydirection AS ENUM ('NOT_SET', 'MINIMIZE', 'MAXIMIZE')",
	"trialstate":                 "CREATE TYPE trialstate AS ENUM ('RUNNING', 'COMPLETE', 'PRUNED', 'FAIL', 'WAITING')",
	"trialvaluetype":             "CREATE TYPE trialvaluetype AS ENUM ('FINITE', 'INF_POS', 'INF_NEG')",
	"trialintermediatevaluetype": "CREATE TYPE trialintermediatevaluetype AS ENUM ('FINITE', 'INF_POS', 'INF_NEG', 'NAN')",
}

var postgresEnumOrder = []string{"studydirection", "trialstate", "trialvaluetype", "trialintermediatevaluetype"}

var postgresDDL = []string{
	"CREATE TABLE IF NOT EXISTS studies (\n\tstudy_id SERIAL NOT NULL, \n\tstudy_name VARCHAR(512) NOT NULL, \n\tPRIMARY KEY (study_id)\n)",
	"CREATE UNIQUE INDEX IF NOT EXISTS ix_studies_study_name ON studies (study_name)",
	"CREATE TABLE IF NOT EXISTS version_info (\n\tversion_info_id INTEGER NOT NULL, \n\tschema_version INTEGER, \n\tlibrary_version VARCHAR(256), \n\tPRIMARY KEY (version_info_id), \n\tCHECK (version_info_id=1)\n)",
	"CREATE TABLE IF NOT EXISTS study_directions (\n\tstudy_direction_id SERIAL NOT NULL, \n\tdirection studydirection NOT NULL, \n\tstudy_id INTEGER NOT NULL, \n\tobjective INTEGER NOT NULL, \n\tPRIMARY KEY (study_direction_id), \n\tUNIQUE (study_id, objective), \n\tFOREIGN KEY(study_id) REFERENCES studies (study_id)\n)",
	"CREATE TABLE IF NOT EXISTS study_user_attributes (\n\tstudy_user_attribute_id SERIAL NOT NULL, \n\tstudy_id INTEGER, \n\tkey VARCHAR(512), \n\tvalue_json TEXT, \n\tPRIMARY KEY (study_user_attribute_id), \n\tUNIQUE (study_id, key), \n\tFOREIGN KEY(study_id) REFERENCES studies (study_id)\n)",
	"CREATE TABLE IF NOT EXISTS study_system_attributes (\n\tstudy_system_attribute_id SERIAL NOT NULL, \n\tstudy_id INTEGER, \n\tkey VARCHAR(512), \n\tvalue_json TEXT, \n\tPRIMARY KEY (study_system_attribute_id), \n\tUNIQUE (study_id, key), \n\tFOREIGN KEY(study_id) REFERENCES studies (study_id)\n)",
	"CREATE TABLE IF NOT EXISTS trials (\n\ttrial_id SERIAL NOT NULL, \n\tnumber INTEGER, \n\tstudy_id INTEGER, \n\tstate trialstate NOT NULL, \n\tdatetime_start TIMESTAMP WITHOUT TIME ZONE, \n\tdatetime_complete TIMESTAMP WITHOUT TIME ZONE, \n\tPRIMARY KEY (trial_id), \n\tFOREIGN KEY(study_id) REFERENCES studies (study_id)\n)",
	"CREATE TABLE IF NOT EXISTS trial_user_attributes (\n\ttrial_user_attribute_id SERIAL NOT NULL, \n\ttrial_id INTEGER, \n\tkey VARCHAR(512), \n\tvalue_json TEXT, \n\tPRIMARY KEY (trial_user_attribute_id), \n\tUNIQUE (trial_id, key), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE IF NOT EXISTS trial_system_attributes (\n\ttrial_system_attribute_id SERIAL NOT NULL, \n\ttrial_id INTEGER, \n\tkey VARCHAR(512), \n\tvalue_json TEXT, \n\tPRIMARY KEY (trial_system_attribute_id), \n\tUNIQUE (trial_id, key), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE IF NOT EXISTS trial_params (\n\tparam_id SERIAL NOT NULL, \n\ttrial_id INTEGER, \n\tparam_name VARCHAR(512), \n\tparam_value FLOAT(53), \n\tdistribution_json TEXT, \n\tPRIMARY KEY (param_id), \n\tUNIQUE (trial_id, param_name), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE IF NOT EXISTS trial_values (\n\ttrial_value_id SERIAL NOT NULL, \n\ttrial_id INTEGER NOT NULL, \n\tobjective INTEGER NOT NULL, \n\tvalue FLOAT(53), \n\tvalue_type trialvaluetype NOT NULL, \n\tPRIMARY KEY (trial_value_id), \n\tUNIQUE (trial_id, objective), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE IF NOT EXISTS trial_intermediate_values (\n\ttrial_intermediate_value_id SERIAL NOT NULL, \n\ttrial_id INTEGER NOT NULL, \n\tstep INTEGER NOT NULL, \n\tintermediate_value FLOAT(53), \n\tintermediate_value_type trialintermediatevaluetype NOT NULL, \n\tPRIMARY KEY (trial_intermediate_value_id), \n\tUNIQUE (trial_id, step), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE IF NOT EXISTS trial_heartbeats (\n\ttrial_heartbeat_id SERIAL NOT NULL, \n\ttrial_id INTEGER NOT NULL, \n\theartbeat TIMESTAMP WITHOUT TIME ZONE NOT NULL, \n\tPRIMARY KEY (trial_heartbeat_id), \n\tUNIQUE (trial_id), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE IF NOT EXISTS alembic_version (\n\tversion_num VARCHAR(32) NOT NULL, \n\tCONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n)",
}

// index32 is what Optuna ≥ 3.2 adds (a fresh ≥3.2 database names it so).
const index32 = "CREATE INDEX IF NOT EXISTS ix_trials_study_id ON trials (study_id)"
