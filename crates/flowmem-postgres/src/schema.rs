//! The crate's tables, created and versioned in a schema the user names.

use postgres::GenericClient;

use crate::PgError;

/// The schema version this crate creates and reads.
pub const SCHEMA_VERSION: i32 = 4;

/// The function that completes a shared-run batch in one call (created by migration 3, replaced by
/// migration 4, which made a repeated completion idempotent).
macro_rules! complete_nodes_function {
    () => {
        r#"
    CREATE OR REPLACE FUNCTION {s}.complete_nodes(
        p_runs text[], p_nodes int4[], p_outputs bytea[], p_tokens int8[],
        p_put_runs text[], p_put_nodes int4[], p_put_keys text[], p_put_values bytea[],
        p_dep_runs text[], p_dep_nodes int4[], p_dep_targets int4[],
        p_lock_runs text[], p_lock_nodes int4[], p_channel text)
    RETURNS TABLE (done_run text, done_node int4, readied int8, notified int8)
    LANGUAGE plpgsql AS $fn$
    #variable_conflict use_column
    BEGIN
        -- The dependents' rows, locked one by one in the order given (sorted by the caller) before
        -- anything else: each a lookup of the primary key, whatever the table's statistics say.
        FOR i IN 1 .. coalesce(array_length(p_lock_runs, 1), 0) LOOP
            PERFORM 1 FROM {s}.shared_nodes n
                WHERE n.run = p_lock_runs[i]::uuid AND n.node = p_lock_nodes[i] FOR UPDATE;
        END LOOP;
        RETURN QUERY
        -- A completion this call repeats (retried on a new connection after an earlier call committed
        -- but its answer was lost) is found done under the same lease token: reported done again,
        -- applied once (this statement's snapshot predates its own updates).
        WITH again AS (
            SELECT n.run, n.node
            FROM {s}.shared_nodes n
            JOIN unnest(p_runs::uuid[], p_nodes, p_tokens) AS t (run, node, token)
              ON n.run = t.run AND n.node = t.node
            WHERE n.state = 'done' AND n.lease_token = t.token),
        -- The nodes whose lease token still matches (the fence) are done; for those only: their
        -- context values (the last put of a key winning), their dependents' counters, a notification
        -- if nodes became ready.
        done AS (
            UPDATE {s}.shared_nodes n
            SET state = 'done', output = t.output, error = NULL, ended_at = now(),
                lease_owner = NULL, lease_expires = NULL
            FROM unnest(p_runs::uuid[], p_nodes, p_outputs, p_tokens) AS t (run, node, output, token)
            WHERE n.run = t.run AND n.node = t.node AND n.state = 'leased'
              AND n.lease_token = t.token
            RETURNING n.run, n.node),
        puts AS (
            INSERT INTO {s}.shared_context (run, key, value)
            SELECT DISTINCT ON (p.run, p.key) p.run, p.key, p.value
            FROM unnest(p_put_runs::uuid[], p_put_nodes, p_put_keys, p_put_values)
                 WITH ORDINALITY AS p (run, node, key, value, ord)
            JOIN done d ON d.run = p.run AND d.node = p.node
            ORDER BY p.run, p.key, p.ord DESC
            ON CONFLICT (run, key) DO UPDATE SET value = excluded.value),
        counts AS (
            SELECT e.run, e.target AS node, count(*)::int4 AS c
            FROM unnest(p_dep_runs::uuid[], p_dep_nodes, p_dep_targets) AS e (run, node, target)
            JOIN done d ON d.run = e.run AND d.node = e.node
            GROUP BY e.run, e.target),
        readied AS (
            UPDATE {s}.shared_nodes n
            SET waiting = n.waiting - c.c,
                state = CASE WHEN n.waiting = c.c AND n.state = 'waiting'
                             THEN 'ready' ELSE n.state END,
                ready_at = CASE WHEN n.waiting = c.c THEN now() ELSE n.ready_at END
            FROM counts c
            WHERE n.run = c.run AND n.node = c.node
            RETURNING n.state),
        ready AS (SELECT count(*) AS n FROM readied WHERE state = 'ready'),
        notified AS (SELECT pg_notify(p_channel, '') FROM ready WHERE ready.n > 0)
        SELECT d.run::text, d.node, (SELECT n FROM ready), (SELECT count(*) FROM notified)
        FROM done d
        UNION ALL
        SELECT a.run::text, a.node, 0::int8, 0::int8
        FROM again a;
    END
    $fn$;
    "#
    };
}

/// The statements that bring a schema from version `i` to `i + 1`, in order (`{s}` is the quoted schema).
const MIGRATIONS: &[&str] = &[
    // 1: runs, their node checkpoints and their context.
    r#"
    CREATE TABLE {s}.runs (
        run uuid PRIMARY KEY,
        workflow text NOT NULL,
        fingerprint bigint NOT NULL,
        nodes integer NOT NULL,
        started_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE {s}.checkpoints (
        run uuid NOT NULL REFERENCES {s}.runs (run) ON DELETE CASCADE,
        node integer NOT NULL,
        name text NOT NULL,
        value bytea NOT NULL,
        PRIMARY KEY (run, node)
    );
    CREATE TABLE {s}.context (
        run uuid NOT NULL REFERENCES {s}.runs (run) ON DELETE CASCADE,
        key text NOT NULL,
        value bytea NOT NULL,
        PRIMARY KEY (run, key)
    );
    "#,
    // 2: shared runs — runs any number of worker processes execute together, node by node, under leases.
    r#"
    CREATE SEQUENCE {s}.lease_tokens;
    CREATE TABLE {s}.shared_runs (
        run uuid PRIMARY KEY,
        workflow text NOT NULL,
        fingerprint bigint NOT NULL,
        nodes integer NOT NULL,
        status text NOT NULL DEFAULT 'running',
        submitted_at timestamptz NOT NULL DEFAULT now(),
        ended_at timestamptz
    );
    CREATE TABLE {s}.shared_nodes (
        run uuid NOT NULL REFERENCES {s}.shared_runs (run) ON DELETE CASCADE,
        node integer NOT NULL,
        name text NOT NULL,
        waiting integer NOT NULL,
        state text NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        ready_at timestamptz,
        lease_owner text,
        lease_token bigint,
        lease_expires timestamptz,
        output bytea,
        error text,
        worker text,
        started_at timestamptz,
        ended_at timestamptz,
        PRIMARY KEY (run, node)
    );
    CREATE INDEX shared_nodes_ready ON {s}.shared_nodes (ready_at) WHERE state = 'ready';
    CREATE INDEX shared_nodes_leased ON {s}.shared_nodes (lease_expires) WHERE state = 'leased';
    CREATE TABLE {s}.shared_context (
        run uuid NOT NULL REFERENCES {s}.shared_runs (run) ON DELETE CASCADE,
        key text NOT NULL,
        value bytea NOT NULL,
        PRIMARY KEY (run, key)
    );
    "#,
    // 3: a shared-run batch's completion in one call (one round trip, one commit); each node's
    // dependencies, for claims that read their inputs in the same statement.
    concat!(
        r#"
    ALTER TABLE {s}.shared_nodes ADD COLUMN deps integer[] NOT NULL DEFAULT '{}';
    "#,
        complete_nodes_function!()
    ),
    // 4: a completion retried after its first call committed (its answer lost with the connection) is
    // reported done again instead of as a lost lease.
    complete_nodes_function!(),
];

/// `name` quoted as an identifier, if it is one this crate accepts (plain lower-case ASCII: no quoting
/// rules to get wrong, no injection).
pub(crate) fn quoted(name: &str) -> Result<String, PgError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(format!("\"{name}\""))
    } else {
        Err(PgError::BadSchemaName {
            name: name.to_string(),
        })
    }
}

/// Creates schema `schema` and this crate's tables in it, or brings them to [`SCHEMA_VERSION`]; does
/// nothing if they are there. Safe to call from many processes at once (a transaction-scoped advisory
/// lock per schema serialises them). `database` names the database in errors.
///
/// # Errors
/// [`PgError::BadSchemaName`], [`PgError::SchemaTooNew`] if a newer crate made the schema, or
/// [`PgError::Query`].
pub fn migrate(
    client: &mut postgres::Client,
    schema: &str,
    database: &str,
) -> Result<i32, PgError> {
    let s = quoted(schema)?;
    let query = |what: String| {
        let database = database.to_string();
        move |source| PgError::Query {
            database,
            what,
            source,
        }
    };
    let mut tx = client.transaction().map_err(query(format!(
        "opening a transaction to migrate schema `{schema}`"
    )))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('flowmem-postgres:' || $1))",
        &[&schema],
    )
    .map_err(query(format!("locking schema `{schema}` to migrate it")))?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {s};
         CREATE TABLE IF NOT EXISTS {s}.flowmem_schema (version integer NOT NULL);"
    ))
    .map_err(query(format!("creating schema `{schema}`")))?;
    let found = current_version(&mut tx, &s)
        .map_err(query(format!("reading the version of schema `{schema}`")))?;
    if found > SCHEMA_VERSION {
        return Err(PgError::SchemaTooNew {
            database: database.to_string(),
            schema: schema.to_string(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, statements) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let to = i as i32 + 1;
        tx.batch_execute(&statements.replace("{s}", &s))
            .map_err(query(format!(
                "migrating schema `{schema}` to version {to}"
            )))?;
    }
    if found < SCHEMA_VERSION {
        tx.execute(&format!("DELETE FROM {s}.flowmem_schema"), &[])
            .and_then(|_| {
                tx.execute(
                    &format!("INSERT INTO {s}.flowmem_schema (version) VALUES ($1)"),
                    &[&SCHEMA_VERSION],
                )
            })
            .map_err(query(format!("recording the version of schema `{schema}`")))?;
    }
    tx.commit().map_err(query(format!(
        "committing the migration of schema `{schema}`"
    )))?;
    Ok(SCHEMA_VERSION)
}

/// The version of schema `schema` (0 if the crate's tables are not there).
///
/// # Errors
/// [`PgError::BadSchemaName`] or [`PgError::Query`].
pub fn schema_version(
    client: &mut postgres::Client,
    schema: &str,
    database: &str,
) -> Result<i32, PgError> {
    let s = quoted(schema)?;
    let exists: bool = client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("{s}.flowmem_schema")],
        )
        .map_err(|source| PgError::Query {
            database: database.to_string(),
            what: format!("looking for schema `{schema}`"),
            source,
        })?
        .get(0);
    if !exists {
        return Ok(0);
    }
    current_version(client, &s).map_err(|source| PgError::Query {
        database: database.to_string(),
        what: format!("reading the version of schema `{schema}`"),
        source,
    })
}

fn current_version(client: &mut impl GenericClient, s: &str) -> Result<i32, postgres::Error> {
    Ok(client
        .query_opt(&format!("SELECT max(version) FROM {s}.flowmem_schema"), &[])?
        .and_then(|row| row.get::<_, Option<i32>>(0))
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers_are_schema_names() {
        assert_eq!(quoted("flows_2").unwrap(), "\"flows_2\"");
        for bad in [
            "",
            "2flows",
            "Flows",
            "a-b",
            "x\"; DROP TABLE y; --",
            &"a".repeat(64),
        ] {
            let e = quoted(bad).unwrap_err();
            assert!(e.to_string().contains("is not a schema name"), "{e}");
        }
    }
}
