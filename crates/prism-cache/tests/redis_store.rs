//! `RedisStore` against a real `redis-server` started on an ephemeral port for each test.
//!
//! When `redis-server` is not on PATH the tests print `SKIPPED: …` and pass, unless
//! `PRISM_REQUIRE_REDIS=1` is set (CI sets it), in which case they fail.
#![cfg(feature = "redis")]
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prism_cache::{
    CacheBackend, CacheConfig, CacheError, CacheKey, CacheOutcome, CachePolicy, CacheStore,
    RedisConfig, RedisStore, ResponseCache,
};
use prism_testkit::{RedisServer, free_port};
use prism_types::ChatRequest;

fn config(url: String, timeout_ms: u64) -> RedisConfig {
    RedisConfig {
        url,
        key_prefix: "prism-test:".to_owned(),
        timeout_ms,
        connect_timeout_ms: 2_000,
        reconnect_backoff_ms: 300,
    }
}

fn key(text: &str) -> CacheKey {
    let request: ChatRequest = serde_json::from_value(serde_json::json!({
        "model": "m",
        "messages": [{"role": "user", "content": text}],
    }))
    .unwrap();
    CacheKey::new("key:tenant", &request).unwrap()
}

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn round_trip_with_prefix() {
    let Some(server) = RedisServer::start() else { return };
    let store = RedisStore::new(&config(server.url(), 2_000)).unwrap();
    assert_eq!(store.get(&key("a")).await.unwrap(), None);
    store.put(&key("a"), Bytes::from_static(b"{\"id\":1}"), MINUTE).await.unwrap();
    assert_eq!(store.get(&key("a")).await.unwrap().as_deref(), Some(&b"{\"id\":1}"[..]));
    assert!(store.is_connected());

    // The entry sits under the prefix, with the TTL that was asked for.
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let full = format!("prism-test:{}", key("a"));
    let ttl: i64 = redis::cmd("TTL").arg(&full).query_async(&mut raw).await.unwrap();
    assert!((55..=60).contains(&ttl), "ttl {ttl}");
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut raw).await.unwrap();
    assert_eq!(keys, vec![full]);
}

#[tokio::test]
async fn two_gateway_instances_share_entries() {
    let Some(server) = RedisServer::start() else { return };
    let cfg = CacheConfig {
        backend: CacheBackend::Redis,
        redis: config(server.url(), 2_000),
        ..CacheConfig::default()
    };
    // Two independent instances, as two gateway processes would build them.
    let gateway_a = ResponseCache::from_config(&cfg).unwrap();
    let gateway_b = ResponseCache::from_config(&cfg).unwrap();
    assert_eq!(gateway_a.backend_name(), "redis");
    let request: ChatRequest =
        serde_json::from_str(r#"{"model":"m","messages":[{"role":"user","content":"shared?"}]}"#)
            .unwrap();
    let calls = AtomicUsize::new(0);
    let compute = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok::<_, std::io::Error>((Bytes::from_static(b"from upstream"), true))
    };

    let key_a = gateway_a.key("key_1", &request).unwrap();
    let first = gateway_a.get_or_compute(&key_a, MINUTE, CachePolicy::DEFAULT, compute).await;
    assert_eq!(first.unwrap().outcome, CacheOutcome::Miss);

    let key_b = gateway_b.key("key_1", &request).unwrap();
    let second = gateway_b.get_or_compute(&key_b, MINUTE, CachePolicy::DEFAULT, compute).await;
    let second = second.unwrap();
    assert_eq!(second.outcome, CacheOutcome::Hit, "instance B sees instance A's entry");
    assert_eq!(second.body, Bytes::from_static(b"from upstream"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Another tenant on instance B does not.
    let other = gateway_b.key("key_2", &request).unwrap();
    let third = gateway_b.get_or_compute(&other, MINUTE, CachePolicy::DEFAULT, compute).await;
    assert_eq!(third.unwrap().outcome, CacheOutcome::Miss);
    assert_eq!(gateway_a.stats().errors + gateway_b.stats().errors, 0);
}

#[tokio::test]
async fn ttl_via_ex_expires() {
    let Some(server) = RedisServer::start() else { return };
    let store = RedisStore::new(&config(server.url(), 2_000)).unwrap();
    store.put(&key("ex"), Bytes::from_static(b"v"), Duration::from_secs(1)).await.unwrap();
    store.put(&key("keep"), Bytes::from_static(b"v"), MINUTE).await.unwrap();
    assert!(store.get(&key("ex")).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert_eq!(store.get(&key("ex")).await.unwrap(), None, "expired by EX 1");
    assert!(store.get(&key("keep")).await.unwrap().is_some());
}

#[tokio::test]
async fn sub_second_ttl_via_px_expires() {
    let Some(server) = RedisServer::start() else { return };
    let store = RedisStore::new(&config(server.url(), 2_000)).unwrap();
    store.put(&key("px"), Bytes::from_static(b"v"), Duration::from_millis(150)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(store.get(&key("px")).await.unwrap(), None, "expired by PX 150");
}

#[tokio::test]
async fn redis_killed_mid_test_requests_still_succeed() {
    let Some(mut server) = RedisServer::start() else { return };
    let timeout = Duration::from_millis(250);
    let store = Arc::new(RedisStore::new(&config(server.url(), 250)).unwrap());
    let cache = ResponseCache::new(Arc::clone(&store) as Arc<dyn CacheStore>);
    let request: ChatRequest =
        serde_json::from_str(r#"{"model":"m","messages":[{"role":"user","content":"q"}]}"#)
            .unwrap();
    let key = cache.key("key_1", &request).unwrap();
    let compute = || async { Ok::<_, std::io::Error>((Bytes::from_static(b"fresh"), true)) };
    let warm = cache.get_or_compute(&key, MINUTE, CachePolicy::DEFAULT, compute).await.unwrap();
    assert_eq!(warm.outcome, CacheOutcome::Miss);
    assert_eq!(cache.stats().stores, 1);

    server.kill();

    // Direct store calls fail, and within the timeout (plus scheduling slack).
    let slack = Duration::from_millis(750);
    let started = Instant::now();
    let get = store.get(&key).await;
    assert!(get.is_err(), "get after kill: {get:?}");
    assert!(started.elapsed() < timeout + slack, "get took {:?}", started.elapsed());
    let started = Instant::now();
    let put = store.put(&key, Bytes::from_static(b"x"), MINUTE).await;
    assert!(put.is_err(), "put after kill: {put:?}");
    assert!(started.elapsed() < timeout + slack, "put took {:?}", started.elapsed());
    // The breaker is open now: further calls are refused without waiting.
    let started = Instant::now();
    for _ in 0..20 {
        assert!(matches!(store.get(&key).await, Err(CacheError::Unavailable { .. })));
    }
    assert!(started.elapsed() < slack, "20 refused gets took {:?}", started.elapsed());

    // Through the facade the request is served, uncached, and the failure is counted.
    let errors_before = cache.stats().errors;
    let started = Instant::now();
    let served = cache.get_or_compute(&key, MINUTE, CachePolicy::DEFAULT, compute).await.unwrap();
    assert_eq!(served.body, Bytes::from_static(b"fresh"));
    assert_eq!(served.outcome, CacheOutcome::Miss);
    assert!(started.elapsed() < 2 * timeout + slack, "request took {:?}", started.elapsed());
    assert_eq!(cache.stats().errors, errors_before + 2, "failed get and failed put counted");
}

#[tokio::test]
async fn recovers_when_redis_comes_back() {
    let Some(mut server) = RedisServer::start() else { return };
    let port = server.port();
    let store = RedisStore::new(&config(server.url(), 250)).unwrap();
    store.put(&key("a"), Bytes::from_static(b"1"), MINUTE).await.unwrap();
    server.kill();
    assert!(store.get(&key("a")).await.is_err());

    let Some(_server) = RedisServer::start_on(port) else {
        eprintln!("SKIPPED: port {port} was taken before redis-server could restart on it");
        return;
    };
    // Within a few backoff periods (300 ms) the store works again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if store.put(&key("b"), Bytes::from_static(b"2"), MINUTE).await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "store did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.get(&key("b")).await.unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(store.get(&key("a")).await.unwrap(), None, "the new server started empty");
}

#[tokio::test]
async fn redis_down_at_startup_does_not_block() {
    // A port with nothing listening.
    let port = free_port();
    let started = Instant::now();
    let cfg = CacheConfig {
        backend: CacheBackend::Redis,
        redis: config(format!("redis://127.0.0.1:{port}"), 200),
        ..CacheConfig::default()
    };
    let cache = ResponseCache::from_config(&cfg).unwrap();
    assert!(started.elapsed() < Duration::from_millis(100), "construction does no IO");

    let request: ChatRequest =
        serde_json::from_str(r#"{"model":"m","messages":[{"role":"user","content":"q"}]}"#)
            .unwrap();
    let key = cache.key("key_1", &request).unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        let served = cache
            .get_or_compute(&key, MINUTE, CachePolicy::DEFAULT, || async {
                Ok::<_, std::io::Error>((Bytes::from_static(b"ok"), true))
            })
            .await
            .unwrap();
        assert_eq!(served.outcome, CacheOutcome::Miss);
        assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    }
    assert!(cache.stats().errors >= 3);

    let store = RedisStore::new(&config(format!("redis://127.0.0.1:{port}"), 200)).unwrap();
    assert!(store.connect().await.is_err());
    assert!(!store.is_connected());
}

#[tokio::test]
async fn silent_server_times_out() {
    // Accepts connections but never answers, like a wedged Redis.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(4) {
            held.push(stream);
        }
        std::thread::sleep(Duration::from_secs(5));
    });
    let mut cfg = config(format!("redis://127.0.0.1:{port}"), 150);
    cfg.connect_timeout_ms = 300;
    let store = RedisStore::new(&cfg).unwrap();
    let started = Instant::now();
    let result = store.get(&key("a")).await;
    let elapsed = started.elapsed();
    assert!(result.is_err(), "{result:?}");
    assert!(
        elapsed >= Duration::from_millis(140) && elapsed < Duration::from_millis(900),
        "gave up after {elapsed:?}"
    );
    drop(holder);
}

#[test]
fn debug_output_hides_the_url() {
    let store = RedisStore::new(&config("redis://user:s3cret@127.0.0.1:1/0".into(), 100)).unwrap();
    let shown = format!("{store:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("prism-test:"), "{shown}");
}
