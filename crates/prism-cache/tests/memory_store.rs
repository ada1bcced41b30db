//! `MemoryStore`: round trips, per-entry TTL, and both capacity bounds.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::time::Duration;

use bytes::Bytes;
use prism_cache::{CacheKey, CacheStore, MemoryLimits, MemoryStore};
use prism_types::ChatRequest;

fn key(i: usize) -> CacheKey {
    let request: ChatRequest = serde_json::from_value(serde_json::json!({
        "model": "m",
        "messages": [{"role": "user", "content": format!("question {i}")}],
    }))
    .unwrap();
    CacheKey::new("tenant", &request).unwrap()
}

fn store(max_entries: u64, max_bytes: u64) -> MemoryStore {
    MemoryStore::new(MemoryLimits { max_entries, max_bytes })
}

#[tokio::test]
async fn round_trip_and_overwrite() {
    let store = store(100, 1 << 20);
    assert_eq!(store.get(&key(1)).await.unwrap(), None);
    store.put(&key(1), Bytes::from_static(b"one"), Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.get(&key(1)).await.unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(store.get(&key(2)).await.unwrap(), None, "other keys stay absent");
    store.put(&key(1), Bytes::from_static(b"uno"), Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.get(&key(1)).await.unwrap().as_deref(), Some(&b"uno"[..]));
    assert_eq!(store.name(), "memory");
}

#[tokio::test]
async fn zero_ttl_stores_nothing() {
    let store = store(100, 1 << 20);
    store.put(&key(1), Bytes::from_static(b"x"), Duration::ZERO).await.unwrap();
    assert_eq!(store.get(&key(1)).await.unwrap(), None);
}

#[tokio::test]
async fn entries_expire_after_their_own_ttl() {
    let store = store(100, 1 << 20);
    let short = Duration::from_millis(150);
    store.put(&key(1), Bytes::from_static(b"short"), short).await.unwrap();
    store.put(&key(2), Bytes::from_static(b"long"), Duration::from_secs(60)).await.unwrap();
    store.put(&key(3), Bytes::from_static(b"medium"), Duration::from_secs(5)).await.unwrap();
    assert!(store.get(&key(3)).await.unwrap().is_some(), "fresh entry is served");

    // Generous margin over the TTL: the machine may be busy.
    tokio::time::sleep(short + Duration::from_millis(350)).await;
    assert_eq!(store.get(&key(1)).await.unwrap(), None, "expired");
    assert_eq!(store.get(&key(2)).await.unwrap().as_deref(), Some(&b"long"[..]));
    assert_eq!(store.get(&key(3)).await.unwrap().as_deref(), Some(&b"medium"[..]));
}

#[tokio::test]
async fn overwrite_takes_the_new_ttl() {
    let store = store(100, 1 << 20);
    store.put(&key(1), Bytes::from_static(b"a"), Duration::from_secs(60)).await.unwrap();
    store.put(&key(1), Bytes::from_static(b"b"), Duration::from_millis(100)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.get(&key(1)).await.unwrap(), None);
}

#[tokio::test]
async fn byte_bound_evicts() {
    let max_bytes = 64 * 1024;
    let store = store(10_000, max_bytes);
    let value = Bytes::from(vec![b'x'; 4 * 1024]);
    for i in 0..100 {
        store.put(&key(i), value.clone(), Duration::from_secs(60)).await.unwrap();
        // A few reads so TinyLFU sees some keys as popular.
        let _ = store.get(&key(i / 2)).await.unwrap();
    }
    store.run_pending_tasks().await;
    assert!(store.weighted_size() <= max_bytes, "weighted {}", store.weighted_size());
    let mut present = 0;
    for i in 0..100 {
        if store.get(&key(i)).await.unwrap().is_some() {
            present += 1;
        }
    }
    // 100 entries of ~4.2 KiB cannot fit in 64 KiB: at most 15 survive, and some do.
    assert!(present <= 15, "{present} entries still present");
    assert!(present >= 1, "the store is not empty");
}

#[tokio::test]
async fn entry_bound_evicts() {
    let store = store(10, 1 << 20);
    for i in 0..100 {
        store.put(&key(i), Bytes::from_static(b"small"), Duration::from_secs(60)).await.unwrap();
    }
    store.run_pending_tasks().await;
    assert!(store.entry_count() <= 10, "{} entries", store.entry_count());
    let mut present = 0;
    for i in 0..100 {
        if store.get(&key(i)).await.unwrap().is_some() {
            present += 1;
        }
    }
    assert!((1..=10).contains(&present), "{present} entries still present");
}

#[tokio::test]
async fn value_larger_than_the_store_is_not_admitted() {
    let store = store(100, 1024);
    store.put(&key(1), Bytes::from(vec![0u8; 4096]), Duration::from_secs(60)).await.unwrap();
    store.run_pending_tasks().await;
    assert_eq!(store.get(&key(1)).await.unwrap(), None);
    assert_eq!(store.weighted_size(), 0);
}
