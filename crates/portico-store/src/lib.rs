//! Portico's embedded state: one SQLite database (a file in the state directory, or in memory
//! with `--ephemeral`). Every resource is a JSON document keyed by (account, region, kind, id),
//! with an optional parent and name for lookups. Every control-plane write is one transaction
//! ([`Store::write`]); a committed write bumps a version on a watch channel, and hands what it
//! wrote (kind, id, parent of every put and delete) to every [`ChangeFeed`] interested in those
//! kinds, so a reconciler can wake only for the kinds it follows and redo only what changed.
//! Schema changes are numbered migrations applied at open.
//!
//! Architecture Invariant: the store knows no service. Kinds are opaque strings owned by the
//! services (`"ec2.vpc"`, `"apigw.route"`, ...).

use parking_lot::Mutex;
use portico_core::AwsError;
use rusqlite::{params, Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::cell::RefCell;
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
    // 3: reconcilers and snapshots list every resource of a kind (`Tx::list_all`); without
    // this index that is a scan of the whole table (100,000 routes at scale).
    "CREATE INDEX resources_kind ON resources (kind);",
    // 4: a name within a parent (route keys are unique per API, and all 1,000 APIs of the
    // scale case share keys: through the name index alone that was 1,000 rows per lookup).
    "CREATE INDEX resources_parent_name ON resources (account, region, kind, parent, name);",
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
    conn: Mutex<Db>,
    version: watch::Sender<u64>,
    /// Change feeds to hand each commit's changes to (dropped feeds are pruned).
    feeds: Mutex<Vec<std::sync::Weak<FeedShared>>>,
}

/// The connection and the parsed bodies of committed rows, locked together.
struct Db {
    conn: Connection,
    cache: RefCell<BodyCache>,
}

/// A row's body: the cached value (shared) or one parsed for this read only.
enum Body {
    Shared(std::sync::Arc<Value>),
    Owned(Value),
}

/// Parsed bodies of committed rows by `seq` (a row keeps its `seq` for life; a deleted row's
/// is never reused). Reading a resource clones its cached `Value` (typed reads, `get_as` and
/// `list_as`, deserialize straight from it without a clone) instead of parsing its text again:
/// the control plane lists and re-reads the same records all the time (profiles of the
/// control-plane mix spent a third of the server's CPU in `serde_json` parsing bodies). Holds
/// only committed values: a row a transaction writes is neither read from nor put into the
/// cache by that transaction, and leaves the cache when the transaction ends, committed or
/// not. Bounded by the text size of what it holds; emptied when full.
#[derive(Default)]
struct BodyCache {
    map: std::collections::HashMap<i64, std::sync::Arc<Value>>,
    bytes: usize,
}

/// What the cache may hold, in bytes of body text.
const CACHE_BYTES: usize = 8 << 20;
/// Bodies larger than this are not cached (deployment snapshots): one parse per read is
/// cheap next to what is done with them.
const CACHE_MAX_BODY: usize = 16 << 10;

impl BodyCache {
    fn insert(&mut self, seq: i64, len: usize, v: &std::sync::Arc<Value>) {
        if len > CACHE_MAX_BODY {
            return;
        }
        if self.bytes + len > CACHE_BYTES {
            self.map.clear();
            self.bytes = 0;
        }
        if self.map.insert(seq, v.clone()).is_none() {
            self.bytes += len;
        }
    }
}

/// One resource a committed transaction put or deleted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Change {
    pub scope: Scope,
    pub kind: String,
    pub id: String,
    /// The parent it was written with (put) or had (delete).
    pub parent: Option<String>,
}

/// What a [`ChangeFeed`] collected since it was last taken.
#[derive(Debug, Default)]
pub struct Changes {
    /// Too much changed to list, or the whole store was reset: treat everything as changed.
    pub everything: bool,
    /// In commit order; may repeat a resource.
    pub changes: Vec<Change>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        !self.everything && self.changes.is_empty()
    }
}

/// More changes than this pending in one feed collapse into `everything`.
const FEED_CAP: usize = 100_000;

struct FeedShared {
    /// Kind prefixes this feed follows (`"apigw."`); empty follows every kind.
    prefixes: Vec<String>,
    /// Keeps the changes for [`ChangeFeed::take`]; a wake-only feed does not.
    collect: bool,
    pending: Mutex<Changes>,
    notify: tokio::sync::Notify,
}

impl FeedShared {
    fn wants(&self, kind: &str) -> bool {
        self.prefixes.is_empty() || self.prefixes.iter().any(|p| kind.starts_with(p.as_str()))
    }

    fn push(&self, log: &[Change], everything: bool) {
        if !self.collect {
            if everything || log.iter().any(|c| self.wants(&c.kind)) {
                self.notify.notify_one();
            }
            return;
        }
        let mut any = everything;
        {
            let mut p = self.pending.lock();
            if everything {
                p.everything = true;
                p.changes.clear();
            }
            for c in log.iter().filter(|c| self.wants(&c.kind)) {
                any = true;
                if !p.everything {
                    p.changes.push(c.clone());
                }
            }
            if p.changes.len() > FEED_CAP {
                p.everything = true;
                p.changes.clear();
            }
        }
        if any {
            self.notify.notify_one();
        }
    }
}

/// Collects the changes of every commit that touch the kinds it follows, from its creation on.
/// A feed is drained by [`ChangeFeed::take`] and wakes one waiter of [`ChangeFeed::changed`].
#[derive(Clone)]
pub struct ChangeFeed {
    shared: Arc<FeedShared>,
}

impl ChangeFeed {
    /// Everything collected since the last call (and clears it).
    pub fn take(&self) -> Changes {
        std::mem::take(&mut *self.shared.pending.lock())
    }

    /// Resolves when a commit touched a followed kind since the last wake (a wake that came
    /// while nobody waited is kept, so none is lost).
    pub async fn changed(&self) {
        self.shared.notify.notified().await
    }
}

impl Store {
    /// Opens (creating if needed) `dir/portico.db`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir)?;
        let conn = Connection::open(dir.join("portico.db"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL in WAL mode: a committed transaction survives a crash of the process.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Reads through a memory map instead of a read() per page, and a larger page cache:
        // at 100,000 routes, page reads were a third of CreateRoute's CPU. Durability is
        // unchanged (writes still go through the WAL).
        conn.pragma_update(None, "mmap_size", 256i64 << 20)?;
        conn.pragma_update(None, "cache_size", -16384i64)?;
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
                conn: Mutex::new(Db {
                    conn,
                    cache: RefCell::default(),
                }),
                version,
                feeds: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Runs `f` in one transaction: committed when it returns `Ok`, rolled back on `Err`, so a
    /// rejected request changes nothing. Wakes every watcher after a commit.
    pub fn write<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T, AwsError>) -> Result<T, AwsError> {
        let out = {
            let mut db = self.inner.conn.lock();
            let db = &mut *db;
            let tx = db.conn.transaction().map_err(StoreError::from)?;
            let t = Tx::new(&tx, &db.cache);
            let out = f(&t);
            // what this transaction wrote leaves the cache, committed or rolled back
            t.uncache();
            let out = out?;
            let (log, everything) = (t.log.take(), t.everything.get());
            tx.commit().map_err(StoreError::from)?;
            // Handed over before the connection is released: whoever reads the store after
            // taking a feed sees at least the state those changes describe.
            if everything || !log.is_empty() {
                self.inner.feeds.lock().retain(|w| match w.upgrade() {
                    Some(f) => {
                        f.push(&log, everything);
                        true
                    }
                    None => false,
                });
            }
            out
        };
        self.inner.version.send_modify(|v| *v += 1);
        Ok(out)
    }

    /// Runs `f` against a consistent view, writing nothing.
    pub fn read<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T, AwsError>) -> Result<T, AwsError> {
        let mut db = self.inner.conn.lock();
        let db = &mut *db;
        let tx = db.conn.transaction().map_err(StoreError::from)?;
        let out = f(&Tx::new(&tx, &db.cache))?;
        drop(tx);
        Ok(out)
    }

    /// A receiver whose value changes after every committed write.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.inner.version.subscribe()
    }

    /// A feed of the changes committed from now on to kinds starting with one of `prefixes`
    /// (every kind when empty).
    pub fn feed(&self, prefixes: &[&str]) -> ChangeFeed {
        self.new_feed(prefixes, true)
    }

    /// A feed that only wakes ([`ChangeFeed::changed`]) after commits to kinds starting with
    /// one of `prefixes`, and keeps nothing ([`ChangeFeed::take`] is always empty).
    pub fn wake_on(&self, prefixes: &[&str]) -> ChangeFeed {
        self.new_feed(prefixes, false)
    }

    fn new_feed(&self, prefixes: &[&str], collect: bool) -> ChangeFeed {
        let shared = Arc::new(FeedShared {
            collect,
            prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
            pending: Mutex::new(Changes::default()),
            notify: tokio::sync::Notify::new(),
        });
        self.inner.feeds.lock().push(Arc::downgrade(&shared));
        ChangeFeed { shared }
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
            tx.everything.set(true);
            Ok(())
        })
    }
}

/// A transaction. All lookups are scoped to (account, region, kind).
pub struct Tx<'a> {
    tx: &'a rusqlite::Transaction<'a>,
    cache: &'a RefCell<BodyCache>,
    /// `seq` of the rows this transaction wrote: not served from nor put into the cache.
    written: RefCell<std::collections::HashSet<i64>>,
    /// What this transaction wrote, for the change feeds.
    log: RefCell<Vec<Change>>,
    everything: std::cell::Cell<bool>,
}

const COLS: &str = "seq, account, region, kind, id, parent, name, body";

impl<'a> Tx<'a> {
    fn new(tx: &'a rusqlite::Transaction<'a>, cache: &'a RefCell<BodyCache>) -> Tx<'a> {
        Tx {
            tx,
            cache,
            written: RefCell::default(),
            log: RefCell::new(Vec::new()),
            everything: std::cell::Cell::new(false),
        }
    }

    fn wrote(&self, seq: i64) {
        self.written.borrow_mut().insert(seq);
    }

    fn uncache(&self) {
        if self.everything.get() {
            let mut c = self.cache.borrow_mut();
            c.map.clear();
            c.bytes = 0;
            return;
        }
        let written = self.written.borrow();
        if written.is_empty() {
            return;
        }
        let mut c = self.cache.borrow_mut();
        for seq in written.iter() {
            c.map.remove(seq);
        }
    }

    /// A record from a row of `seq, account, region, kind, id, parent, name, body`, its body
    /// from the cache when it holds it.
    fn record(&self, r: &rusqlite::Row<'_>) -> Result<Record, StoreError> {
        let body = match self.body(r)? {
            Body::Shared(v) => std::sync::Arc::unwrap_or_clone(v),
            Body::Owned(v) => v,
        };
        Ok(Record {
            scope: Scope {
                account: r.get(1)?,
                region: r.get(2)?,
            },
            kind: r.get(3)?,
            id: r.get(4)?,
            parent: r.get(5)?,
            name: r.get(6)?,
            body,
        })
    }

    /// The body of a row of `seq, ..., body` (column 7): shared from the cache when it holds
    /// it (no clone), else parsed (and cached unless this transaction wrote the row).
    fn body(&self, r: &rusqlite::Row<'_>) -> Result<Body, StoreError> {
        let seq: i64 = r.get(0)?;
        if self.written.borrow().contains(&seq) {
            let text = r.get_ref(7)?.as_str().map_err(rusqlite::Error::from)?;
            return Ok(Body::Owned(serde_json::from_str(text)?));
        }
        if let Some(v) = self.cache.borrow().map.get(&seq) {
            return Ok(Body::Shared(v.clone()));
        }
        let text = r.get_ref(7)?.as_str().map_err(rusqlite::Error::from)?;
        let v = std::sync::Arc::new(serde_json::from_str::<Value>(text)?);
        self.cache.borrow_mut().insert(seq, text.len(), &v);
        Ok(Body::Shared(v))
    }

    /// A row's body deserialized as `T`, straight from the cached `Value` (no copy of it).
    fn typed<T: DeserializeOwned>(&self, r: &rusqlite::Row<'_>) -> Result<T, StoreError> {
        Ok(match self.body(r)? {
            Body::Shared(v) => T::deserialize(&*v)?,
            Body::Owned(v) => serde_json::from_value(v)?,
        })
    }

    fn typed_rows<T: DeserializeOwned, P: rusqlite::Params>(
        &self,
        st: &mut rusqlite::CachedStatement<'_>,
        params: P,
    ) -> Result<Vec<T>, StoreError> {
        let mut rows = st.query(params)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(self.typed(r)?);
        }
        Ok(out)
    }

    fn records<P: rusqlite::Params>(
        &self,
        st: &mut rusqlite::CachedStatement<'_>,
        params: P,
    ) -> Result<Vec<Record>, StoreError> {
        let mut rows = st.query(params)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(self.record(r)?);
        }
        Ok(out)
    }

    fn logged(&self, scope: &Scope, kind: &str, id: &str, parent: Option<String>) {
        self.log.borrow_mut().push(Change {
            scope: scope.clone(),
            kind: kind.to_string(),
            id: id.to_string(),
            parent,
        });
    }
}

impl Tx<'_> {
    pub fn get(&self, scope: &Scope, kind: &str, id: &str) -> Result<Option<Record>, StoreError> {
        let mut st = self.tx.prepare_cached(
            "SELECT seq, account, region, kind, id, parent, name, body FROM resources WHERE account=?1 AND region=?2 AND kind=?3 AND id=?4",
        )?;
        let mut rows = st.query(params![scope.account, scope.region, kind, id])?;
        match rows.next()? {
            Some(r) => Ok(Some(self.record(r)?)),
            None => Ok(None),
        }
    }

    /// The body of a resource, deserialized.
    pub fn get_as<T: DeserializeOwned>(
        &self,
        scope: &Scope,
        kind: &str,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let mut st = self.tx.prepare_cached(
            "SELECT seq, account, region, kind, id, parent, name, body FROM resources WHERE account=?1 AND region=?2 AND kind=?3 AND id=?4",
        )?;
        let mut rows = st.query(params![scope.account, scope.region, kind, id])?;
        match rows.next()? {
            Some(r) => Ok(Some(self.typed(r)?)),
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
        let seq: i64 = self
            .tx
            .prepare_cached(
                "INSERT INTO resources (account, region, kind, id, parent, name, body) VALUES (?1,?2,?3,?4,?5,?6,?7)
             ON CONFLICT (account, region, kind, id) DO UPDATE SET parent=excluded.parent, name=excluded.name, body=excluded.body
             RETURNING seq",
            )?
            .query_row(
                params![scope.account, scope.region, kind, id, parent, name, text],
                |r| r.get(0),
            )?;
        self.wrote(seq);
        self.logged(scope, kind, id, parent.map(str::to_string));
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
        let gone: Option<(i64, Option<String>)> = self
            .tx
            .prepare_cached(
                "DELETE FROM resources WHERE account=?1 AND region=?2 AND kind=?3 AND id=?4 RETURNING seq, parent",
            )?
            .query_row(params![scope.account, scope.region, kind, id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        match gone {
            Some((seq, parent)) => {
                self.wrote(seq);
                self.logged(scope, kind, id, parent);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// All resources of a kind in a scope (optionally under one parent), in creation order.
    pub fn list(
        &self,
        scope: &Scope,
        kind: &str,
        parent: Option<&str>,
    ) -> Result<Vec<Record>, StoreError> {
        match parent {
            Some(p) => {
                let mut st = self.tx.prepare_cached(&format!(
                    "SELECT {COLS} FROM resources WHERE account=?1 AND region=?2 AND kind=?3 AND parent=?4 ORDER BY seq"
                ))?;
                self.records(&mut st, params![scope.account, scope.region, kind, p])
            }
            None => {
                let mut st = self.tx.prepare_cached(&format!(
                    "SELECT {COLS} FROM resources WHERE account=?1 AND region=?2 AND kind=?3 ORDER BY seq"
                ))?;
                self.records(&mut st, params![scope.account, scope.region, kind])
            }
        }
    }

    pub fn list_as<T: DeserializeOwned>(
        &self,
        scope: &Scope,
        kind: &str,
        parent: Option<&str>,
    ) -> Result<Vec<T>, StoreError> {
        match parent {
            Some(p) => {
                let mut st = self.tx.prepare_cached(&format!(
                    "SELECT {COLS} FROM resources WHERE account=?1 AND region=?2 AND kind=?3 AND parent=?4 ORDER BY seq"
                ))?;
                self.typed_rows(&mut st, params![scope.account, scope.region, kind, p])
            }
            None => {
                let mut st = self.tx.prepare_cached(&format!(
                    "SELECT {COLS} FROM resources WHERE account=?1 AND region=?2 AND kind=?3 ORDER BY seq"
                ))?;
                self.typed_rows(&mut st, params![scope.account, scope.region, kind])
            }
        }
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
        self.records(&mut st, params![scope.account, scope.region, kind, name])
    }

    /// Resources of a kind under one parent with the given name, in creation order (the
    /// parent index narrows it to the parent's children; [`Tx::find_by_name`] reads every
    /// resource of the kind with that name, in any parent).
    pub fn find_by_name_under(
        &self,
        scope: &Scope,
        kind: &str,
        parent: &str,
        name: &str,
    ) -> Result<Vec<Record>, StoreError> {
        let mut st = self.tx.prepare_cached(&format!(
            "SELECT {COLS} FROM resources WHERE account=?1 AND region=?2 AND kind=?3 AND parent=?4 AND name=?5 ORDER BY seq"
        ))?;
        self.records(
            &mut st,
            params![scope.account, scope.region, kind, parent, name],
        )
    }

    /// Every resource of a kind in every scope (reconcilers, data-plane snapshots).
    pub fn list_all(&self, kind: &str) -> Result<Vec<Record>, StoreError> {
        let mut st = self.tx.prepare_cached(&format!(
            "SELECT {COLS} FROM resources WHERE kind=?1 ORDER BY seq"
        ))?;
        self.records(&mut st, params![kind])
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
            Some(p) => self
                .tx
                .prepare_cached(
                    "SELECT COUNT(*) FROM resources WHERE account=?1 AND region=?2 AND kind=?3 AND parent=?4",
                )?
                .query_row(params![scope.account, scope.region, kind, p], |r| r.get(0))?,
            None => self
                .tx
                .prepare_cached(
                    "SELECT COUNT(*) FROM resources WHERE account=?1 AND region=?2 AND kind=?3",
                )?
                .query_row(params![scope.account, scope.region, kind], |r| r.get(0))?,
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
    fn feeds_get_the_changes_of_committed_writes_for_their_kinds() {
        let s = Store::in_memory().unwrap();
        let apigw = s.feed(&["apigw."]);
        let all = s.feed(&[]);
        s.write(|tx| {
            tx.put(&scope(), "apigw.api", "a1", None, None, &json!({}))?;
            tx.put(
                &scope(),
                "apigw.stage",
                "a1/$default",
                Some("a1"),
                None,
                &json!({}),
            )?;
            Ok(tx.put(&scope(), "ec2.vpc", "v", None, None, &json!({}))?)
        })
        .unwrap();
        // rolled back: not fed
        let _ = s.write(|tx| {
            tx.put(&scope(), "apigw.api", "a2", None, None, &json!({}))?;
            Err::<(), _>(AwsError::bad("X", "no"))
        });
        s.write(|tx| Ok(tx.delete(&scope(), "apigw.stage", "a1/$default")?))
            .unwrap();
        let got = apigw.take();
        assert!(!got.everything);
        let ids: Vec<(&str, &str, Option<&str>)> = got
            .changes
            .iter()
            .map(|c| (c.kind.as_str(), c.id.as_str(), c.parent.as_deref()))
            .collect();
        assert_eq!(
            ids,
            vec![
                ("apigw.api", "a1", None),
                ("apigw.stage", "a1/$default", Some("a1")),
                // a delete reports the parent the resource had
                ("apigw.stage", "a1/$default", Some("a1")),
            ]
        );
        assert!(apigw.take().is_empty());
        assert_eq!(all.take().changes.len(), 4);
        // deleting nothing changes nothing
        s.write(|tx| Ok(tx.delete(&scope(), "apigw.stage", "nope")?))
            .unwrap();
        assert!(all.take().is_empty());
        s.reset().unwrap();
        assert!(apigw.take().everything);
    }

    #[tokio::test]
    async fn a_feed_wakes_only_for_its_kinds_and_keeps_a_wake_nobody_waited_for() {
        let s = Store::in_memory().unwrap();
        let f = s.feed(&["ecs."]);
        s.write(|tx| Ok(tx.put(&scope(), "apigw.api", "a", None, None, &json!({}))?))
            .unwrap();
        let woke = tokio::time::timeout(std::time::Duration::from_millis(20), f.changed()).await;
        assert!(woke.is_err(), "an apigw write does not wake an ecs feed");
        s.write(|tx| Ok(tx.put(&scope(), "ecs.task", "t", None, None, &json!({}))?))
            .unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), f.changed())
            .await
            .unwrap();
    }

    #[test]
    fn cached_bodies_follow_writes_and_rollbacks() {
        let s = Store::in_memory().unwrap();
        let get = |s: &Store| {
            s.read(|tx| Ok(tx.get(&scope(), "k", "a")?.map(|r| r.body)))
                .unwrap()
        };
        s.write(|tx| Ok(tx.put(&scope(), "k", "a", None, None, &json!({"v": 1}))?))
            .unwrap();
        assert_eq!(get(&s), Some(json!({"v": 1})));
        assert_eq!(get(&s), Some(json!({"v": 1}))); // from the cache
                                                    // a rolled-back write leaves the committed value
        let _ = s.write(|tx| {
            tx.put(&scope(), "k", "a", None, None, &json!({"v": 2}))?;
            // the transaction sees its own write, not the cached value
            assert_eq!(tx.get(&scope(), "k", "a")?.unwrap().body, json!({"v": 2}));
            Err::<(), _>(AwsError::bad("X", "no"))
        });
        assert_eq!(get(&s), Some(json!({"v": 1})));
        s.write(|tx| Ok(tx.put(&scope(), "k", "a", None, None, &json!({"v": 3}))?))
            .unwrap();
        assert_eq!(get(&s), Some(json!({"v": 3})));
        let listed = s.read(|tx| Ok(tx.list_all("k")?)).unwrap();
        assert_eq!(listed[0].body, json!({"v": 3}));
        s.write(|tx| Ok(tx.delete(&scope(), "k", "a")?)).unwrap();
        assert_eq!(get(&s), None);
        s.write(|tx| Ok(tx.put(&scope(), "k", "a", None, None, &json!({"v": 4}))?))
            .unwrap();
        assert_eq!(get(&s), Some(json!({"v": 4})));
        s.reset().unwrap();
        assert_eq!(get(&s), None);
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
