//! PostgreSQL: batched inserts into `prism_usage`, the schema migrated at connect, and the totals
//! query behind `GET /v1/usage`. No TLS is built in (connect over a private network or a local
//! socket, or put a TLS-terminating pooler beside the gateway).
//!
//! Schema (migration 1; `docs/limits.md` documents every column):
//!
//! ```sql
//! CREATE TABLE prism_usage (
//!   id bigserial PRIMARY KEY, request_id text NOT NULL UNIQUE, started_at timestamptz NOT NULL,
//!   key_name text NOT NULL, model text NOT NULL, deployment text, provider text,
//!   protocol text NOT NULL, stream boolean NOT NULL,
//!   input_tokens bigint NOT NULL, cached_input_tokens bigint NOT NULL,
//!   cache_write_tokens bigint NOT NULL, output_tokens bigint NOT NULL,
//!   reasoning_tokens bigint NOT NULL, cost_usd double precision NOT NULL,
//!   estimated boolean NOT NULL, ttft_ms bigint, duration_ms bigint NOT NULL,
//!   attempts integer NOT NULL, outcome text NOT NULL, status integer NOT NULL);
//! ```
//!
//! `request_id` is unique and inserts skip duplicates, so a batch retried after a lost
//! acknowledgement is stored once.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use super::Sink;
use crate::LedgerError;
use crate::record::UsageRecord;
use crate::totals::UsageRow;

/// The migrations, in order; each runs once, in one transaction with its version row.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    "CREATE TABLE prism_usage (
        id bigserial PRIMARY KEY,
        request_id text NOT NULL UNIQUE,
        started_at timestamptz NOT NULL,
        key_name text NOT NULL,
        model text NOT NULL,
        deployment text,
        provider text,
        protocol text NOT NULL,
        stream boolean NOT NULL,
        input_tokens bigint NOT NULL,
        cached_input_tokens bigint NOT NULL,
        cache_write_tokens bigint NOT NULL,
        output_tokens bigint NOT NULL,
        reasoning_tokens bigint NOT NULL,
        cost_usd double precision NOT NULL,
        estimated boolean NOT NULL,
        ttft_ms bigint,
        duration_ms bigint NOT NULL,
        attempts integer NOT NULL,
        outcome text NOT NULL,
        status integer NOT NULL
    );
    CREATE INDEX prism_usage_started_at ON prism_usage (started_at);
    CREATE INDEX prism_usage_key_model ON prism_usage (key_name, model, started_at);",
)];

/// Serialises concurrent migrations from several instances starting together.
const MIGRATION_LOCK: i64 = 0x7072_6973_6d75;

const INSERT: &str = "INSERT INTO prism_usage (request_id, started_at, key_name, model, deployment,
        provider, protocol, stream, input_tokens, cached_input_tokens, cache_write_tokens,
        output_tokens, reasoning_tokens, cost_usd, estimated, ttft_ms, duration_ms, attempts,
        outcome, status)
    SELECT r, to_timestamp(s::double precision / 1000), k, m, d, p, pr, st, i, ci, cw, o, re, c,
        e, t, du, a, oc, sc
    FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[],
        $7::text[], $8::bool[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::int8[],
        $14::float8[], $15::bool[], $16::int8[], $17::int8[], $18::int4[], $19::text[],
        $20::int4[])
        AS u(r, s, k, m, d, p, pr, st, i, ci, cw, o, re, c, e, t, du, a, oc, sc)
    ON CONFLICT (request_id) DO NOTHING";

const TOTALS: &str = "SELECT key_name, model, count(*)::int8, sum(input_tokens)::int8,
        sum(cached_input_tokens)::int8, sum(cache_write_tokens)::int8, sum(output_tokens)::int8,
        sum(reasoning_tokens)::int8, sum(cost_usd)::float8, count(*) FILTER (WHERE estimated)::int8
    FROM prism_usage
    WHERE started_at >= to_timestamp($1::double precision / 1000)
      AND started_at < to_timestamp($2::double precision / 1000)
    GROUP BY key_name, model ORDER BY key_name, model";

/// `[usage.postgres]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// `postgres://user[:password]@host[:port]/database` or the key=value form.
    pub url: String,
    /// Records per insert.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// A partial batch waits at most this long.
    #[serde(default = "default_flush_interval_ms")]
    pub flush_interval_ms: u64,
    /// Connecting, and each statement.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_batch_size() -> usize {
    256
}
fn default_flush_interval_ms() -> u64 {
    500
}
fn default_timeout_ms() -> u64 {
    5_000
}

impl PostgresConfig {
    /// Checks the bounds and that the URL parses (without connecting).
    ///
    /// # Errors
    /// The field and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        self.url
            .parse::<tokio_postgres::Config>()
            .map_err(|e| ("url", format!("not a PostgreSQL connection string: {e}")))?;
        if !(1..=10_000).contains(&self.batch_size) {
            return Err(("batch_size", "must be between 1 and 10000".into()));
        }
        if !(1..=60_000).contains(&self.flush_interval_ms) {
            return Err(("flush_interval_ms", "must be between 1 and 60000".into()));
        }
        if !(1..=600_000).contains(&self.timeout_ms) {
            return Err(("timeout_ms", "must be between 1 and 600000".into()));
        }
        Ok(())
    }
}

fn pg_error(e: impl std::error::Error + Send + Sync + 'static) -> LedgerError {
    LedgerError::Sink { sink: "postgres", source: Box::new(e) }
}

/// Connects (bounded by the timeout) and drives the connection on its own task.
async fn connect(config: &PostgresConfig) -> Result<Client, LedgerError> {
    let timeout = Duration::from_millis(config.timeout_ms);
    let connecting = tokio_postgres::connect(&config.url, NoTls);
    let (client, connection) = tokio::time::timeout(timeout, connecting)
        .await
        .map_err(|_| LedgerError::Timeout { what: "postgres connect" })?
        .map_err(pg_error)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "usage database connection closed");
        }
    });
    Ok(client)
}

/// Applies the migrations not yet applied.
async fn migrate(client: &mut Client) -> Result<(), LedgerError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(pg_error)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS prism_schema_migrations (
            version integer PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await
    .map_err(pg_error)?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM prism_schema_migrations", &[])
        .await
        .map_err(pg_error)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await.map_err(pg_error)?;
        tx.execute("INSERT INTO prism_schema_migrations (version) VALUES ($1)", &[version])
            .await
            .map_err(pg_error)?;
        tracing::info!(version, "usage database migrated");
    }
    tx.commit().await.map_err(pg_error)
}

/// The PostgreSQL sink: one connection, re-established (and migrations re-checked) after an
/// error.
#[derive(Debug)]
pub(crate) struct PostgresSink {
    config: PostgresConfig,
    client: Option<Client>,
}

impl PostgresSink {
    pub(crate) fn new(config: PostgresConfig) -> Self {
        PostgresSink { config, client: None }
    }

    async fn insert(
        client: &Client,
        batch: &[Arc<UsageRecord>],
    ) -> Result<u64, tokio_postgres::Error> {
        let col =
            |f: &dyn Fn(&UsageRecord) -> String| batch.iter().map(|r| f(r)).collect::<Vec<_>>();
        let int = |f: &dyn Fn(&UsageRecord) -> u64| {
            batch.iter().map(|r| i64::try_from(f(r)).unwrap_or(i64::MAX)).collect::<Vec<i64>>()
        };
        let request_id = col(&|r| r.request_id.clone());
        let started = int(&|r| r.started_at_ms);
        let key = col(&|r| r.key.clone());
        let model = col(&|r| r.model.clone());
        let deployment: Vec<Option<String>> = batch.iter().map(|r| r.deployment.clone()).collect();
        let provider: Vec<Option<String>> = batch.iter().map(|r| r.provider.clone()).collect();
        let protocol = col(&|r| r.protocol.clone());
        let stream: Vec<bool> = batch.iter().map(|r| r.stream).collect();
        let input = int(&|r| r.tokens.input);
        let cached = int(&|r| r.tokens.cached_input);
        let writes = int(&|r| r.tokens.cache_write);
        let output = int(&|r| r.tokens.output);
        let reasoning = int(&|r| r.tokens.reasoning);
        let cost: Vec<f64> = batch.iter().map(|r| r.cost_usd).collect();
        let estimated: Vec<bool> = batch.iter().map(|r| r.estimated).collect();
        let ttft: Vec<Option<i64>> =
            batch.iter().map(|r| r.ttft_ms.map(|t| i64::try_from(t).unwrap_or(i64::MAX))).collect();
        let duration = int(&|r| r.duration_ms);
        let attempts: Vec<i32> =
            batch.iter().map(|r| i32::try_from(r.attempts).unwrap_or(i32::MAX)).collect();
        let outcome = col(&|r| r.outcome.as_str().to_owned());
        let status: Vec<i32> = batch.iter().map(|r| i32::from(r.status)).collect();
        client
            .execute(
                INSERT,
                &[
                    &request_id,
                    &started,
                    &key,
                    &model,
                    &deployment,
                    &provider,
                    &protocol,
                    &stream,
                    &input,
                    &cached,
                    &writes,
                    &output,
                    &reasoning,
                    &cost,
                    &estimated,
                    &ttft,
                    &duration,
                    &attempts,
                    &outcome,
                    &status,
                ],
            )
            .await
    }
}

impl Sink for PostgresSink {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn write(&mut self, batch: &[Arc<UsageRecord>]) -> Result<(), LedgerError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            let mut client = connect(&self.config).await?;
            migrate(&mut client).await?;
            self.client = Some(client);
        }
        let Some(client) = self.client.as_ref() else { return Ok(()) };
        if batch.is_empty() {
            return Ok(());
        }
        let timeout = Duration::from_millis(self.config.timeout_ms);
        let result = match tokio::time::timeout(timeout, Self::insert(client, batch)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(pg_error(e)),
            Err(_) => Err(LedgerError::Timeout { what: "postgres insert" }),
        };
        if result.is_err() {
            self.client = None;
        }
        result
    }
}

/// Totals by key and model of the records started in `[from_ms, to_ms)`.
///
/// # Errors
/// The database is unreachable or the query failed.
pub async fn query_totals(
    config: &PostgresConfig,
    from_ms: u64,
    to_ms: u64,
) -> Result<Vec<UsageRow>, LedgerError> {
    let mut client = connect(config).await?;
    migrate(&mut client).await?;
    let timeout = Duration::from_millis(config.timeout_ms);
    let (from, to) = (from_ms as f64, to_ms as f64);
    let rows = tokio::time::timeout(timeout, client.query(TOTALS, &[&from, &to]))
        .await
        .map_err(|_| LedgerError::Timeout { what: "postgres query" })?
        .map_err(pg_error)?;
    let n = |row: &tokio_postgres::Row, i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
    Ok(rows
        .iter()
        .map(|row| UsageRow {
            key: row.get(0),
            model: row.get(1),
            requests: n(row, 2),
            input_tokens: n(row, 3),
            cached_input_tokens: n(row, 4),
            cache_write_tokens: n(row, 5),
            output_tokens: n(row, 6),
            reasoning_tokens: n(row, 7),
            cost_usd: row.get(8),
            estimated_requests: n(row, 9),
        })
        .collect())
}
