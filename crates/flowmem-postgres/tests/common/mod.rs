//! What the tests against a real server share: the server (`FLOWMEM_PG`) and a schema of each test's own.

#![allow(dead_code, reason = "each test file uses its part")]

use flowmem_postgres::PgOptions;

/// The server: `FLOWMEM_PG`, or the one `.ci/run` starts.
pub(crate) fn config() -> String {
    std::env::var("FLOWMEM_PG")
        .unwrap_or_else(|_| "host=127.0.0.1 user=postgres dbname=test".into())
}

/// A schema of this test's own, dropped (with everything in it) when the guard goes.
pub(crate) struct Schema(pub(crate) String);

impl Schema {
    pub(crate) fn new(test: &str) -> Schema {
        let schema = Schema(format!("t_{}_{test}", std::process::id()));
        schema.drop_it();
        schema
    }

    pub(crate) fn options(&self) -> PgOptions {
        PgOptions::new(config()).schema(&self.0)
    }

    pub(crate) fn client() -> postgres::Client {
        postgres::Client::connect(&config(), postgres::NoTls).unwrap_or_else(|e| {
            panic!(
                "these tests need PostgreSQL at `{}` (set FLOWMEM_PG; `.ci/run` starts one): {e}",
                config()
            )
        })
    }

    fn drop_it(&self) {
        Schema::client()
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.0))
            .unwrap();
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        self.drop_it();
    }
}

pub(crate) mod server;
