//! Embedded persistence for the MQTT broker, on [redb].
//!
//! The broker (one task per realm) keeps everything it has acknowledged in one redb file per
//! realm: retained messages, persistent sessions (`clean_session = 0`) with their subscriptions,
//! their queued and in-flight outgoing QoS 1/2 messages, and the incoming QoS 2 packet ids still
//! waiting for PUBREL. The realm collects the changes of a batch of commands into a list of
//! [`StoreOp`]s and calls [`Store::apply`] once per batch: the whole batch is one durable write
//! transaction, so one fsync covers many messages. Only after `apply` returns may the broker
//! acknowledge (PUBACK / PUBREC / SUBACK) what the batch recorded; a crash at any point — SIGTERM
//! or `kill -9` — then loses nothing that was acknowledged, and [`Store::load`] returns it all on
//! the next start.
//!
//! # Layout
//! Three tables, every value a *record*: one format-version byte ([`FORMAT_VERSION`]) followed by
//! the MessagePack encoding (`rmp-serde`, with field names) of the Rust type, so that a later
//! version can recognise and migrate old records.
//!
//! | table | key | record |
//! | --- | --- | --- |
//! | `mqtt_retained` | topic (`&str`) | [`StoredMessage`] |
//! | `mqtt_sessions` | client id (`&str`) | [`StoredSession`] |
//! | `mqtt_queue` | client id bytes, `0x00`, `seq` as 8 bytes big-endian | [`QueuedMessage`] |
//!
//! MQTT forbids U+0000 in client ids, so the `0x00` separator makes each client's queue one
//! contiguous key range (`id 0x00 ..` up to `id 0x01`), ordered by `seq`, that no other client id
//! can fall into (not even one that has `id` as a prefix, since its next byte is above `0x00`).
//! [`Store::apply`] rejects a batch that names a client id containing U+0000.
//!
//! # Blocking
//! [`Store::apply`] waits for the disk (fsync); [`Store::load`] reads the whole file. Both are
//! synchronous: call them from a blocking context (`spawn_blocking` or a dedicated thread), not
//! on an async worker that other tasks share.
//!
//! # Crash recovery
//! redb commits with checksummed roots: after an unclean stop, opening the file rolls back to the
//! last committed transaction (repairing its allocator state first, which takes time proportional
//! to the file's size).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// The version byte that starts every record this code writes.
pub const FORMAT_VERSION: u8 = 1;

/// The page cache redb may use per store (it grows up to this as pages are touched).
const CACHE_SIZE: usize = 64 * 1024 * 1024;

const RETAINED: TableDefinition<&str, &[u8]> = TableDefinition::new("mqtt_retained");
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("mqtt_sessions");
const QUEUE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("mqtt_queue");

/// A failure of the store. Any error from [`Store::apply`] means the whole batch was *not*
/// written (the transaction is aborted), so nothing of it may be acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created (including: already open, by this or
    /// another process).
    #[error("cannot open MQTT store {path}: {source}")]
    Open {
        /// The file that was being opened.
        path: PathBuf,
        /// What redb reported.
        #[source]
        source: Box<redb::Error>,
    },
    /// A storage error from redb (I/O, transaction, table or commit failure).
    #[error("MQTT store: {0}")]
    Db(#[from] Box<redb::Error>),
    /// A record could not be encoded.
    #[error("MQTT store: cannot encode a record: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// A stored record could not be decoded, or disagrees with its key.
    #[error("MQTT store: corrupt record in table {table} at key {key:?}: {reason}")]
    Corrupt {
        /// The table holding the record.
        table: &'static str,
        /// The record's key, lossily as text.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored record starts with a format version this code does not know (written by a newer
    /// version of junction).
    #[error("MQTT store: record in table {table} has format version {version}, expected {FORMAT_VERSION}")]
    UnsupportedVersion {
        /// The table holding the record.
        table: &'static str,
        /// The version byte found.
        version: u8,
    },
    /// An operation named a client id containing U+0000, which MQTT forbids and the queue's key
    /// layout cannot represent.
    #[error("MQTT store: client id {0:?} contains U+0000")]
    InvalidClientId(String),
}

macro_rules! from_redb {
    ($($t:ty),* $(,)?) => {
        $(impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(Box::new(e.into()))
            }
        })*
    };
}

from_redb!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::SetDurabilityError,
);

/// A message as stored: a retained message, or the message inside a [`QueuedMessage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// The topic name it was published to.
    pub topic: String,
    /// The application payload.
    pub payload: Bytes,
    /// The QoS (0, 1 or 2): for a retained message the QoS it was published with; for a queued
    /// one the QoS it is delivered with (already reduced to the granted QoS).
    pub qos: u8,
    /// The RETAIN flag.
    pub retain: bool,
}

/// A persistent session's metadata (its queue is stored separately, see [`StoreOp::PutQueued`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSession {
    /// The MQTT client identifier (never contains U+0000).
    pub client_id: String,
    /// The subscriptions: topic filter and granted QoS.
    pub subscriptions: Vec<(String, u8)>,
    /// When the client was last connected, in seconds since the Unix epoch.
    pub last_seen_unix: u64,
    /// Incoming QoS 2 packet ids received (PUBREC sent) and not yet released.
    pub incoming_qos2: Vec<u16>,
}

/// An outgoing message queued for a session: `seq` orders the queue; `pkid` is set once it is in
/// flight (sent, unacked); `pubrel` true when PUBREC was received for a QoS 2 message (only
/// PUBREL/PUBCOMP remain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedMessage {
    /// Position in the session's queue (unique per client; ascending = delivery order).
    pub seq: u64,
    /// The message to deliver.
    pub msg: StoredMessage,
    /// The packet identifier it was sent with, once in flight.
    pub pkid: Option<u16>,
    /// PUBREC received: only PUBREL / PUBCOMP remain for this QoS 2 message.
    pub pubrel: bool,
}

/// One change to the store. [`Store::apply`] runs a slice of them in order, in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// Stores (or replaces) the retained message of `msg.topic`.
    PutRetained(StoredMessage),
    /// Removes the retained message of this topic, if any.
    DeleteRetained(String),
    /// Stores (or replaces) a session's metadata; its queue is untouched.
    PutSession(StoredSession),
    /// Removes a session's metadata and all its queued messages, and nothing else.
    DeleteSession(String),
    /// Inserts a queued message, or replaces the one with the same `(client_id, item.seq)`.
    PutQueued {
        /// The session the message is queued for.
        client_id: String,
        /// The message and its delivery state.
        item: QueuedMessage,
    },
    /// Removes the queued message `(client_id, seq)`, if any.
    DeleteQueued {
        /// The session the message was queued for.
        client_id: String,
        /// Its position in that session's queue.
        seq: u64,
    },
}

impl StoreOp {
    /// The client id this op names, if any.
    fn client_id(&self) -> Option<&str> {
        match self {
            StoreOp::PutRetained(_) | StoreOp::DeleteRetained(_) => None,
            StoreOp::PutSession(s) => Some(&s.client_id),
            StoreOp::DeleteSession(id)
            | StoreOp::PutQueued { client_id: id, .. }
            | StoreOp::DeleteQueued { client_id: id, .. } => Some(id),
        }
    }
}

/// Everything stored, as [`Store::load`] returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// All retained messages, ordered by topic.
    pub retained: Vec<StoredMessage>,
    /// All persistent sessions, ordered by client id, each with its queue ordered by `seq`.
    pub sessions: Vec<(StoredSession, Vec<QueuedMessage>)>,
}

/// The MQTT store of one realm: one redb database file.
///
/// `Store` is `Send + Sync`; write transactions are serialized by redb (a second concurrent
/// [`Store::apply`] waits for the first).
pub struct Store {
    db: Database,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens or creates the database file (creating parent dirs is NOT done: the node dir exists).
    ///
    /// Creates the tables if they are missing. After an unclean stop this also recovers the file
    /// to its last committed transaction. Fails if the file is already open (in this or another
    /// process).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |e: redb::Error| StoreError::Open {
            path: path.to_path_buf(),
            source: Box::new(e),
        };
        let db = Database::builder()
            .set_cache_size(CACHE_SIZE)
            .create(path)
            .map_err(|e| open_err(e.into()))?;
        let store = Store { db };
        let txn = store.db.begin_write().map_err(|e| open_err(e.into()))?;
        {
            txn.open_table(RETAINED).map_err(|e| open_err(e.into()))?;
            txn.open_table(SESSIONS).map_err(|e| open_err(e.into()))?;
            txn.open_table(QUEUE).map_err(|e| open_err(e.into()))?;
        }
        txn.commit().map_err(|e| open_err(e.into()))?;
        Ok(store)
    }

    /// Everything stored, for startup.
    ///
    /// Queued messages whose session has no metadata (which [`Store::apply`] never leaves behind
    /// unless a caller queued for a client it never stored) are not returned; a warning is logged.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        let txn = self.db.begin_read()?;
        let retained_t = txn.open_table(RETAINED)?;
        let sessions_t = txn.open_table(SESSIONS)?;
        let queue_t = txn.open_table(QUEUE)?;

        let mut retained = Vec::with_capacity(usize::try_from(retained_t.len()?).unwrap_or(0));
        for entry in retained_t.iter()? {
            let (k, v) = entry?;
            let topic = k.value();
            let msg: StoredMessage = decode("mqtt_retained", topic.as_bytes(), v.value())?;
            if msg.topic != topic {
                return Err(corrupt(
                    "mqtt_retained",
                    topic.as_bytes(),
                    format!("record is for topic {:?}", msg.topic),
                ));
            }
            retained.push(msg);
        }

        let mut sessions = Vec::with_capacity(usize::try_from(sessions_t.len()?).unwrap_or(0));
        let mut attached: u64 = 0;
        for entry in sessions_t.iter()? {
            let (k, v) = entry?;
            let id = k.value();
            let session: StoredSession = decode("mqtt_sessions", id.as_bytes(), v.value())?;
            if session.client_id != id {
                return Err(corrupt(
                    "mqtt_sessions",
                    id.as_bytes(),
                    format!("record is for client id {:?}", session.client_id),
                ));
            }
            let (lo, hi) = queue_range(id);
            let mut queue = Vec::new();
            for entry in queue_t.range(lo.as_slice()..hi.as_slice())? {
                let (k, v) = entry?;
                let key = k.value();
                let item: QueuedMessage = decode("mqtt_queue", key, v.value())?;
                let key_seq = seq_of_key(key);
                if Some(item.seq) != key_seq {
                    return Err(corrupt(
                        "mqtt_queue",
                        key,
                        format!("record has seq {}", item.seq),
                    ));
                }
                queue.push(item);
            }
            attached += queue.len() as u64;
            sessions.push((session, queue));
        }

        let total = queue_t.len()?;
        if total != attached {
            tracing::warn!(
                orphaned = total - attached,
                "MQTT store: queued messages without a stored session are ignored"
            );
        }
        Ok(Loaded { retained, sessions })
    }

    /// Applies a batch in ONE durable write transaction (fsync before returning). Empty batch = no-op.
    ///
    /// The ops run in order, so a later op on the same key wins (put then delete: gone). On any
    /// error nothing of the batch is written. A batch naming a client id that contains U+0000 is
    /// rejected with [`StoreError::InvalidClientId`] before anything is written.
    pub fn apply(&self, ops: &[StoreOp]) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        if let Some(id) = ops
            .iter()
            .filter_map(StoreOp::client_id)
            .find(|id| id.contains('\0'))
        {
            return Err(StoreError::InvalidClientId(id.to_owned()));
        }

        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut retained = txn.open_table(RETAINED)?;
            let mut sessions = txn.open_table(SESSIONS)?;
            let mut queue = txn.open_table(QUEUE)?;
            for op in ops {
                match op {
                    StoreOp::PutRetained(msg) => {
                        retained.insert(msg.topic.as_str(), encode(msg)?.as_slice())?;
                    }
                    StoreOp::DeleteRetained(topic) => {
                        retained.remove(topic.as_str())?;
                    }
                    StoreOp::PutSession(session) => {
                        sessions.insert(session.client_id.as_str(), encode(session)?.as_slice())?;
                    }
                    StoreOp::DeleteSession(id) => {
                        sessions.remove(id.as_str())?;
                        let (lo, hi) = queue_range(id);
                        queue.retain_in(lo.as_slice()..hi.as_slice(), |_, _| false)?;
                    }
                    StoreOp::PutQueued { client_id, item } => {
                        let key = queue_key(client_id, item.seq);
                        queue.insert(key.as_slice(), encode(item)?.as_slice())?;
                    }
                    StoreOp::DeleteQueued { client_id, seq } => {
                        queue.remove(queue_key(client_id, *seq).as_slice())?;
                    }
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}

/// The queue key of `(client_id, seq)`: the id's bytes, `0x00`, `seq` big-endian.
fn queue_key(client_id: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(client_id.len() + 9);
    key.extend_from_slice(client_id.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The half-open key range `[id 0x00, id 0x01)` holding exactly `client_id`'s queue.
fn queue_range(client_id: &str) -> (Vec<u8>, Vec<u8>) {
    let mut lo = Vec::with_capacity(client_id.len() + 1);
    lo.extend_from_slice(client_id.as_bytes());
    lo.push(0);
    let mut hi = lo.clone();
    *hi.last_mut().expect("non-empty") = 1;
    (lo, hi)
}

/// The `seq` at the end of a queue key, if the key is long enough to hold one.
fn seq_of_key(key: &[u8]) -> Option<u64> {
    let tail = key.len().checked_sub(8).map(|at| &key[at..])?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

/// A record: the version byte, then the value as MessagePack with field names.
fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![FORMAT_VERSION];
    value.serialize(&mut rmp_serde::Serializer::new(&mut out).with_struct_map())?;
    Ok(out)
}

/// Decodes a record written by [`encode`].
fn decode<T: DeserializeOwned>(
    table: &'static str,
    key: &[u8],
    record: &[u8],
) -> Result<T, StoreError> {
    match record.split_first() {
        None => Err(corrupt(table, key, "empty record".to_owned())),
        Some((&FORMAT_VERSION, body)) => {
            rmp_serde::from_slice(body).map_err(|e| corrupt(table, key, e.to_string()))
        }
        Some((&version, _)) => Err(StoreError::UnsupportedVersion { table, version }),
    }
}

fn corrupt(table: &'static str, key: &[u8], reason: String) -> StoreError {
    StoreError::Corrupt {
        table,
        key: String::from_utf8_lossy(key).into_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(topic: &str, payload: &[u8], qos: u8, retain: bool) -> StoredMessage {
        StoredMessage {
            topic: topic.to_owned(),
            payload: Bytes::copy_from_slice(payload),
            qos,
            retain,
        }
    }

    fn session(id: &str) -> StoredSession {
        StoredSession {
            client_id: id.to_owned(),
            subscriptions: vec![("a/+/c".to_owned(), 1), ("#".to_owned(), 2)],
            last_seen_unix: 1_700_000_000,
            incoming_qos2: vec![1, 7, 65535],
        }
    }

    fn queued(seq: u64) -> QueuedMessage {
        QueuedMessage {
            seq,
            msg: msg("t/x", format!("m{seq}").as_bytes(), 1, false),
            pkid: None,
            pubrel: false,
        }
    }

    fn put_q(id: &str, seq: u64) -> StoreOp {
        StoreOp::PutQueued {
            client_id: id.to_owned(),
            item: queued(seq),
        }
    }

    fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("mqtt.redb")).unwrap();
        (dir, store)
    }

    fn queue_of<'a>(loaded: &'a Loaded, id: &str) -> Option<&'a [QueuedMessage]> {
        loaded
            .sessions
            .iter()
            .find(|(s, _)| s.client_id == id)
            .map(|(_, q)| q.as_slice())
    }

    #[test]
    fn fresh_store_loads_empty_and_empty_batch_is_noop() {
        let (_dir, store) = temp_store();
        assert_eq!(store.load().unwrap(), Loaded::default());
        store.apply(&[]).unwrap();
        assert_eq!(store.load().unwrap(), Loaded::default());
    }

    #[test]
    fn round_trip_every_op() {
        let (_dir, store) = temp_store();
        let retained = msg("sensors/ünï/temp", &[0, 1, 2, 255], 2, true);
        let empty_payload = msg("x", b"", 0, true);
        let s = session("client-1");
        let mut q2 = queued(2);
        q2.msg.qos = 2;
        q2.pkid = Some(42);
        q2.pubrel = true;
        store
            .apply(&[
                StoreOp::PutRetained(retained.clone()),
                StoreOp::PutRetained(empty_payload.clone()),
                StoreOp::PutSession(s.clone()),
                put_q("client-1", 1),
                StoreOp::PutQueued {
                    client_id: "client-1".into(),
                    item: q2.clone(),
                },
            ])
            .unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.retained, vec![retained.clone(), empty_payload]);
        assert_eq!(
            loaded.sessions,
            vec![(s.clone(), vec![queued(1), q2.clone()])]
        );

        // PutQueued replaces by (client_id, seq); PutSession replaces the meta only.
        let mut q1 = queued(1);
        q1.pkid = Some(9);
        let mut s2 = s.clone();
        s2.subscriptions.clear();
        s2.incoming_qos2.clear();
        s2.last_seen_unix += 5;
        store
            .apply(&[
                StoreOp::PutQueued {
                    client_id: "client-1".into(),
                    item: q1.clone(),
                },
                StoreOp::PutSession(s2.clone()),
            ])
            .unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.sessions, vec![(s2, vec![q1, q2.clone()])]);

        // Deletes, including of keys that do not exist.
        store
            .apply(&[
                StoreOp::DeleteRetained("x".into()),
                StoreOp::DeleteRetained("never-there".into()),
                StoreOp::DeleteQueued {
                    client_id: "client-1".into(),
                    seq: 1,
                },
                StoreOp::DeleteQueued {
                    client_id: "client-1".into(),
                    seq: 99,
                },
            ])
            .unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.retained, vec![retained]);
        assert_eq!(queue_of(&loaded, "client-1").unwrap(), &[q2][..]);

        store
            .apply(&[
                StoreOp::DeleteSession("client-1".into()),
                StoreOp::DeleteRetained("sensors/ünï/temp".into()),
                StoreOp::DeleteSession("nobody".into()),
            ])
            .unwrap();
        assert_eq!(store.load().unwrap(), Loaded::default());
    }

    #[test]
    fn ops_apply_in_order_within_a_batch() {
        let (_dir, store) = temp_store();
        store
            .apply(&[
                // put then delete: gone
                StoreOp::PutRetained(msg("gone", b"1", 1, true)),
                StoreOp::DeleteRetained("gone".into()),
                StoreOp::PutSession(session("gone")),
                StoreOp::DeleteSession("gone".into()),
                StoreOp::PutSession(session("s")),
                put_q("s", 1),
                StoreOp::DeleteQueued {
                    client_id: "s".into(),
                    seq: 1,
                },
                // delete then put: present
                StoreOp::DeleteRetained("here".into()),
                StoreOp::PutRetained(msg("here", b"2", 1, true)),
                StoreOp::DeleteQueued {
                    client_id: "s".into(),
                    seq: 2,
                },
                put_q("s", 2),
                // put, put: the last wins
                StoreOp::PutRetained(msg("twice", b"a", 0, true)),
                StoreOp::PutRetained(msg("twice", b"b", 0, true)),
                // a session deleted with its queue, then recreated in the same batch
                StoreOp::PutSession(session("again")),
                put_q("again", 1),
                StoreOp::DeleteSession("again".into()),
                StoreOp::PutSession(session("again")),
                put_q("again", 2),
            ])
            .unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(
            loaded.retained,
            vec![msg("here", b"2", 1, true), msg("twice", b"b", 0, true)]
        );
        assert_eq!(
            loaded.sessions,
            vec![
                (session("again"), vec![queued(2)]),
                (session("s"), vec![queued(2)]),
            ]
        );
    }

    #[test]
    fn delete_session_removes_only_that_clients_queue() {
        let (_dir, store) = temp_store();
        let ids = ["", "a", "a\u{1}", "ab", "a\u{1}\u{1}", "b", "\u{10FFFF}"];
        let mut ops = vec![StoreOp::PutRetained(msg("keep", b"r", 1, true))];
        for id in ids {
            ops.push(StoreOp::PutSession(session(id)));
            ops.extend([put_q(id, 0), put_q(id, 1), put_q(id, u64::MAX)]);
        }
        store.apply(&ops).unwrap();

        store.apply(&[StoreOp::DeleteSession("a".into())]).unwrap();
        let loaded = store.load().unwrap();
        assert!(queue_of(&loaded, "a").is_none());
        assert_eq!(loaded.retained, vec![msg("keep", b"r", 1, true)]);
        for id in ids.iter().filter(|id| **id != "a") {
            assert_eq!(
                queue_of(&loaded, id).unwrap(),
                &[queued(0), queued(1), queued(u64::MAX)][..],
                "client {id:?}"
            );
        }
        // The queue really went with the meta: a new session "a" starts empty.
        store.apply(&[StoreOp::PutSession(session("a"))]).unwrap();
        assert_eq!(queue_of(&store.load().unwrap(), "a").unwrap(), &[][..]);

        store.apply(&[StoreOp::DeleteSession("".into())]).unwrap();
        let loaded = store.load().unwrap();
        assert!(queue_of(&loaded, "").is_none());
        assert_eq!(loaded.sessions.len(), ids.len() - 1);
        assert_eq!(queue_of(&loaded, "a\u{1}").unwrap().len(), 3);
    }

    #[test]
    fn load_orders_queue_by_seq() {
        let (_dir, store) = temp_store();
        let seqs = [300, 1, 256, 2, u64::MAX, 0, 255, 65536, 1 << 40];
        let mut ops = vec![StoreOp::PutSession(session("c"))];
        ops.extend(seqs.iter().map(|&s| put_q("c", s)));
        store.apply(&ops).unwrap();
        let loaded = store.load().unwrap();
        let got: Vec<u64> = queue_of(&loaded, "c")
            .unwrap()
            .iter()
            .map(|q| q.seq)
            .collect();
        let mut want = seqs.to_vec();
        want.sort_unstable();
        assert_eq!(got, want);
    }

    #[test]
    fn reopen_after_drop_sees_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mqtt.redb");
        let ops = vec![
            StoreOp::PutRetained(msg("r/1", b"hello", 1, true)),
            StoreOp::PutSession(session("p")),
            put_q("p", 5),
            put_q("p", 6),
        ];
        let before = {
            let store = Store::open(&path).unwrap();
            store.apply(&ops).unwrap();
            store.load().unwrap()
        };
        let store = Store::open(&path).unwrap();
        let after = store.load().unwrap();
        assert_eq!(after, before);
        assert_eq!(after.retained.len(), 1);
        assert_eq!(queue_of(&after, "p").unwrap(), &[queued(5), queued(6)][..]);
    }

    #[test]
    fn second_open_of_the_same_file_fails() {
        let (dir, _store) = temp_store();
        let err = Store::open(&dir.path().join("mqtt.redb")).unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{err}");
    }

    #[test]
    fn open_does_not_create_parent_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let err = Store::open(&dir.path().join("missing").join("mqtt.redb")).unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{err}");
    }

    #[test]
    fn nul_in_client_id_rejects_the_whole_batch() {
        let (_dir, store) = temp_store();
        let err = store
            .apply(&[
                StoreOp::PutRetained(msg("t", b"", 0, true)),
                StoreOp::PutSession(session("ok")),
                put_q("bad\0id", 1),
            ])
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidClientId(ref id) if id == "bad\0id"));
        assert_eq!(store.load().unwrap(), Loaded::default());
    }

    #[test]
    fn records_carry_a_version_byte() {
        let record = encode(&msg("t", b"p", 1, false)).unwrap();
        assert_eq!(record[0], FORMAT_VERSION);
        let back: StoredMessage = decode("t", b"k", &record).unwrap();
        assert_eq!(back, msg("t", b"p", 1, false));

        let mut newer = record.clone();
        newer[0] = FORMAT_VERSION + 1;
        assert!(matches!(
            decode::<StoredMessage>("t", b"k", &newer),
            Err(StoreError::UnsupportedVersion { version, .. }) if version == FORMAT_VERSION + 1
        ));
        assert!(matches!(
            decode::<StoredMessage>("t", b"k", &[]),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            decode::<StoredMessage>("t", b"k", &record[..record.len() - 1]),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn queue_keys_sort_by_client_then_seq() {
        assert!(queue_key("a", u64::MAX) < queue_key("a\u{1}", 0));
        assert!(queue_key("a", u64::MAX) < queue_key("ab", 0));
        assert!(queue_key("a", 255) < queue_key("a", 256));
        let (lo, hi) = queue_range("a");
        assert!(lo.as_slice() <= queue_key("a", 0).as_slice());
        assert!(queue_key("a", u64::MAX).as_slice() < hi.as_slice());
        assert!(queue_key("a\u{1}", 0).as_slice() >= hi.as_slice());
        assert_eq!(
            seq_of_key(&queue_key("xyz", 0x0102_0304)),
            Some(0x0102_0304)
        );
    }
}
