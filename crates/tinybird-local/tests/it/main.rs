//! tinybird-local's integration tests, one binary (each module was its own test binary; one link of DataFusion
//! instead of eight). `scripts/test.sh` runs the engine-independent suites again on the ClickHouse engine by module
//! name (`http_api::`, `security::`, …).

mod common;

mod audit_panics;
mod binary;
mod clickhouse;
mod differential;
mod http_api;
mod red_team;
mod security;
mod tb_cli;
