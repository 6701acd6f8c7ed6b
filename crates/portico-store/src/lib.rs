//! Portico's embedded state: one SQLite database (a file in the state directory, or in memory
//! with `--ephemeral`). Every resource is a JSON document keyed by (account, region, kind, id),
//! with an optional parent and name for lookups. Every control-plane write is one transaction
//! ([`Store::write`]); a committed write bumps a version on a watch channel that reconcilers
//! wait on. Schema changes are numbered migrations applied at open.
//!
//! Architecture Invariant: the store knows no service. Kinds are opaque strings owned by the
//! services (`"ec2.vpc"`, `"apigw.route"`, ...).

use parking_lot::Mutex;
use portico_core::AwsError;
use rusqlite::{params, Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

/// Migrations, applied in order; index + 1 is the schema version (`PRAGMA user_version`).
const MIGRATIONS: &[&str] = &[
    // 1: the resource table.
    "CREATE TABLE resources (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        parent TEXT,
        name TEXT,
        body TEXT NOT NULL,
        UNIQUE (account, region, kind, id)
    );
    CREATE INDEX resources_parent ON resources (account, region, kind, parent);
    CREATE INDEX resources_name ON resources (account, region, kind, name);",
    // 2: global counters (ENI addresses, sequence numbers).
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
];

/// The partition a resource lives in. Global services (IAM) use region `""`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub account: String,
    pub region: String,
}

impl Scope {
    pub fn new(account: impl Into<String>, region: impl Into<String>) -> Self {
        Scope {
            account: account.into(),
            region: region.into(),
        }
    }

    pub fn of(ctx: &portico_core::RequestContext) -> Self {
        Scope::new(&ctx.account_id, &ctx.region)
    }

    pub fn global(&self) -> Scope {
        Scope::new(&self.account, "")
    }
}

/// One stored resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub scope: Scope,
    pub kind: String,
    pub id: String,
    pub parent: Option<String>,
    pub name: Option<String>,
    pub body: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("state directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("state database schema {found} is newer than this Portico ({known})")]
    TooNew { found: i64, known: i64 },
}

impl From<StoreError> for AwsError {
    fn from(e: StoreError) -> Self {
        AwsError::internal(e)
    }
}

/// The handle every part of the control plane shares.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    version: watch::Sender<u64>,
}

impl Store {
    /// Opens (creating if needed) `dir/portico.db`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir)?;
        let conn = Connection::open(dir.join("portico.db"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL in WAL mode: a committed transaction survives a crash of the process.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Self::init(conn)
    }

    /// A store that lives only in memory (`--ephemeral`, tests).
    pub fn in_memory() -> Result<Store, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Store, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if current > known {
            return Err(StoreError::TooNew {
                found: current,
                known,
            });
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(m)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        let (version, _) = watch::channel(0);
        Ok(Store {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                version,
            }),
        })
    }

    /// Runs `f` in one transaction: committed when it returns `Ok`, rolled back on `Err`, so a
    /// rejected request changes nothing. Wakes every watcher after a commit.
    pub fn write<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T, AwsError>) -> Result<T, AwsError> {
        let out = {
            let mut conn = self.inner.conn.lock();
            let tx = conn.transaction().map_err(StoreError::from)?;
            let out = f(&Tx { tx: &tx })?;
            tx.commit().map_err(StoreError::from)?;
            out
        };
        self.inner.version.send_modify(|v| *v += 1);
        Ok(out)
    }

    /// Runs `f` against a consistent view, writing nothing.
    pub fn read<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T, AwsError>) -> Result<T, AwsError> {
        let mut conn = self.inner.conn.lock();
        let tx = conn.transaction().map_err(StoreError::from)?;
        let out = f(&Tx { tx: &tx })?;
        drop(tx);
        Ok(out)
    }

    /// A receiver whose value changes after every committed write.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.inner.version.subscribe()
    }

    /// Deletes all state (`/_portico/reset`).
    pub fn reset(&self) -> Result<(), AwsError> {
        self.write(|tx| {
            tx.tx
                .execute("DELETE FROM resources", [])
                .map_err(StoreError::from)?;
            tx.tx
                .execute("DELETE FROM counters", [])
                .map_err(StoreError::from)?;
            Ok(())
        })
    }
}

/// A transaction. All lookups are scoped to (account, region, kind).
pub struct Tx<'a> {
    tx: &'a rusqlite::Transaction<'a>,
}

fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

type RawRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
);

fn to_record(raw: RawRow) -> Result<Record, StoreError> {
    let (account, region, kind, id, parent, name, body) = raw;
    Ok(Record {
        scope: Scope { account, region },
        kind,
        id,
        parent,
        name,
        body: serde_json::from_str(&body)?,
    })
}

const COLS: &str = "account, region, kind, id, parent, name, body";

impl Tx<'_> {
    pub fn get(&self, scope: &Scope, kind: &str, id: &str) -> Result<Option<Record>, StoreError> {
        let raw = self
            .tx
            .query_row(
                &format!("SELECT {COLS} FROM resources WHERE account=?1 AND region=?2 AND kind=?3 AND id=?4"),
                params![scope.account, scope.region, kind, id],
                row_to_record,
            )
            .optional()?;
        raw.map(to_record).transpose()
    }

    /// The body of a resource, deserialized.
    pub fn get_as<T: DeserializeOwned>(
        &self,
        scope: &Scope,
        kind: &str,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        match self.get(scope, kind, id)? {
            Some(r) => Ok(Some(serde_json::from_value(r.body)?)),
            None => Ok(None),
        }
    }

    /// Inserts or replaces a resource (keeps its original position in listing order).
    pub fn put(
        &self,
        scope: &Scope,
        kind: &str,
        id: &str,
        parent: Option<&str>,
        name: Option<&str>,
        body: &Value,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(body)?;
        self.tx.execute(
            "INSERT INTO resources (account, region, kind, id, parent, name, body) VALUES (?1,?2,?3,?4,?5,?6,?7)
             ON CONFLICT (account, region, kind, id) DO UPDATE SET parent=excluded.parent, name=excluded.name, body=excluded.body",
            params![scope.account, scope.region, kind, id, parent, name, text],
        )?;
        Ok(())
    }

    pub fn put_as<T: Serialize>(
        &self,
        scope: &Scope,
        kind: &str,
        id: &str,
        parent: Option<&str>,
        name: Option<&str>,
        body: &T,
    ) -> Result<(), StoreError> {
        self.put(scope, kind, id, parent, name, &serde_json::to_value(body)?)
    }

    /// Deletes a resource; returns whether it existed.
    pub fn delete(&self, scope: &Scope, kind: &str, id: &str) -> Result<bool, StoreError> {
        let n = self.tx.execute(
            "DELETE FROM resources WHERE account=?1 AND region=?2 AND kind=?3 AND id=?4",
            params![scope.account, scope.region, kind, id],
        )?;
        Ok(n > 0)
    }

    /// All resources of a kind in a scope (optionally under one parent), in creation order.
    pub fn list(
        &self,
        scope: &Scope,
        kind: &str,
        parent: Option<&str>,
    ) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::new();
        match parent {
            Some(p) => {
                let mut st = self.tx.prepare_cached(&format!(
                    "SELECT {COLS} FROM resources WHERE account=?1 AND region=?2 AND kind=?3 AND parent=?4 ORDER BY seq"
                ))?;
                for r in
                    st.query_map(params![scope.account, scope.region, kind, p], row_to_record)?
                {
                    out.push(to_record(r?)?);
                }
            }
            None => {
                let mut st = self.tx.prepare_cached(&format!(
                    "SELECT {COLS} FROM resources WHERE account=?1 AND region=?2 AND kind=?3 ORDER BY seq"
                ))?;
                for r in st.query_map(params![scope.account, scope.region, kind], row_to_record)? {
                    out.push(to_record(r?)?);
                }
            }
        }
        Ok(out)
    }

    pub fn list_as<T: DeserializeOwned>(
        &self,
        scope: &Scope,
        kind: &str,
        parent: Option<&str>,
    ) -> Result<Vec<T>, StoreError> {
        self.list(scope, kind, parent)?
            .into_iter()
            .map(|r| serde_json::from_value(r.body).map_err(StoreError::from))
            .collect()
    }

    /// Resources of a kind with the given name, in creation order.
    pub fn find_by_name(
        &self,
        scope: &Scope,
        kind: &str,
        name: &str,
    ) -> Result<Vec<Record>, StoreError> {
        let mut st = self.tx.prepare_cached(&format!(
            "SELECT {COLS} FROM resources WHERE account=?1 AND region=?2 AND kind=?3 AND name=?4 ORDER BY seq"
        ))?;
        let mut out = Vec::new();
        for r in st.query_map(
            params![scope.account, scope.region, kind, name],
            row_to_record,
        )? {
            out.push(to_record(r?)?);
        }
        Ok(out)
    }

    /// Every resource of a kind in every scope (reconcilers, data-plane snapshots).
    pub fn list_all(&self, kind: &str) -> Result<Vec<Record>, StoreError> {
        let mut st = self.tx.prepare_cached(&format!(
            "SELECT {COLS} FROM resources WHERE kind=?1 ORDER BY seq"
        ))?;
        let mut out = Vec::new();
        for r in st.query_map(params![kind], row_to_record)? {
            out.push(to_record(r?)?);
        }
        Ok(out)
    }

    /// Counts resources of a kind in a scope (optionally under one parent), without reading
    /// their bodies.
    pub fn count(
        &self,
        scope: &Scope,
        kind: &str,
        parent: Option<&str>,
    ) -> Result<usize, StoreError> {
        let n: i64 = match parent {
            Some(p) => self.tx.query_row(
                "SELECT COUNT(*) FROM resources WHERE account=?1 AND region=?2 AND kind=?3 AND parent=?4",
                params![scope.account, scope.region, kind, p],
                |r| r.get(0),
            )?,
            None => self.tx.query_row(
                "SELECT COUNT(*) FROM resources WHERE account=?1 AND region=?2 AND kind=?3",
                params![scope.account, scope.region, kind],
                |r| r.get(0),
            )?,
        };
        Ok(n as usize)
    }

    /// Atomically increments a named counter and returns its new value (starting at 1).
    pub fn next_counter(&self, name: &str) -> Result<i64, StoreError> {
        self.tx.execute(
            "INSERT INTO counters (name, value) VALUES (?1, 1) ON CONFLICT (name) DO UPDATE SET value = value + 1",
            params![name],
        )?;
        Ok(self.tx.query_row(
            "SELECT value FROM counters WHERE name=?1",
            params![name],
            |r| r.get(0),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> Scope {
        Scope::new("000000000000", "us-east-1")
    }

    #[test]
    fn write_commits_and_err_rolls_back() {
        let s = Store::in_memory().unwrap();
        let rx = s.watch();
        s.write(|tx| Ok(tx.put(&scope(), "k", "a", None, Some("n"), &json!({"x": 1}))?))
            .unwrap();
        assert_eq!(*rx.borrow(), 1);
        let r: Result<(), AwsError> = s.write(|tx| {
            tx.put(&scope(), "k", "b", None, None, &json!({}))?;
            Err(AwsError::bad("X", "no"))
        });
        assert!(r.is_err());
        let all = s.read(|tx| Ok(tx.list(&scope(), "k", None)?)).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].body, json!({"x": 1}));
        assert_eq!(
            s.read(|tx| Ok(tx.find_by_name(&scope(), "k", "n")?.len()))
                .unwrap(),
            1
        );
        // other scope sees nothing
        assert_eq!(
            s.read(|tx| Ok(tx.list(&Scope::new("1", "us-east-1"), "k", None)?.len()))
                .unwrap(),
            0
        );
    }

    #[test]
    fn survives_reopen_and_counts() {
        let dir = std::env::temp_dir().join(format!("portico-store-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let s = Store::open(&dir).unwrap();
            s.write(|tx| Ok(tx.put(&scope(), "k", "a", Some("p"), None, &json!(1))?))
                .unwrap();
            assert_eq!(s.write(|tx| Ok(tx.next_counter("c")?)).unwrap(), 1);
            assert_eq!(s.write(|tx| Ok(tx.next_counter("c")?)).unwrap(), 2);
        }
        let s = Store::open(&dir).unwrap();
        assert_eq!(
            s.read(|tx| Ok(tx.list(&scope(), "k", Some("p"))?.len()))
                .unwrap(),
            1
        );
        assert_eq!(
            s.read(|tx| Ok(tx.count(&scope(), "k", Some("p"))?))
                .unwrap(),
            1
        );
        assert_eq!(
            s.read(|tx| Ok(tx.count(&scope(), "k", Some("q"))?))
                .unwrap(),
            0
        );
        assert_eq!(s.read(|tx| Ok(tx.count(&scope(), "k", None)?)).unwrap(), 1);
        assert_eq!(
            s.read(|tx| Ok(tx.count(&Scope::new("1", "x"), "k", None)?))
                .unwrap(),
            0
        );
        assert_eq!(s.write(|tx| Ok(tx.next_counter("c")?)).unwrap(), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
