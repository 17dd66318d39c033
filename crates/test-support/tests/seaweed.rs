//! The SeaweedFS harness serves real S3: a SigV4-signing client (object_store) puts, gets,
//! lists and uploads in parts; wrong keys are refused; buckets are isolated from each other.

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use ms_test_support::seaweed::{Seaweed, seaweed};

fn client(s3: &Seaweed, bucket: &str, secret: &str) -> AmazonS3 {
    AmazonS3Builder::new()
        .with_endpoint(&s3.endpoint)
        .with_region(&s3.region)
        .with_access_key_id(&s3.access_key)
        .with_secret_access_key(secret)
        .with_bucket_name(bucket)
        .with_allow_http(true)
        .build()
        .expect("an S3 client for the test server")
}

#[tokio::test]
async fn put_get_list_and_multipart_upload() {
    let s3 = seaweed();
    let store = client(s3, &s3.bucket(), &s3.secret_key);

    let small = Path::from("dir/small.txt");
    store
        .put(&small, PutPayload::from_static(b"hello"))
        .await
        .unwrap();
    let got = store.get(&small).await.unwrap().bytes().await.unwrap();
    assert_eq!(got, Bytes::from_static(b"hello"));

    // Three parts: two of the 5 MiB S3 minimum, and a short last one.
    let part = |byte: u8, len: usize| Bytes::from(vec![byte; len]);
    let big = Path::from("dir/big.bin");
    let mut upload = store.put_multipart(&big).await.unwrap();
    for payload in [part(1, 5 << 20), part(2, 5 << 20), part(3, 1000)] {
        upload.put_part(payload.into()).await.unwrap();
    }
    upload.complete().await.unwrap();
    let got = store.get(&big).await.unwrap().bytes().await.unwrap();
    assert_eq!(got.len(), (10 << 20) + 1000);
    assert!(got[..5 << 20].iter().all(|&b| b == 1));
    assert!(got[5 << 20..10 << 20].iter().all(|&b| b == 2));
    assert!(got[10 << 20..].iter().all(|&b| b == 3));

    let mut listed: Vec<(String, u64)> = store
        .list(Some(&Path::from("dir")))
        .map_ok(|m| (m.location.to_string(), m.size))
        .try_collect()
        .await
        .unwrap();
    listed.sort();
    assert_eq!(
        listed,
        [
            ("dir/big.bin".to_string(), (10 << 20) + 1000),
            ("dir/small.txt".to_string(), 5)
        ]
    );
}

#[tokio::test]
async fn requests_with_a_wrong_secret_are_refused() {
    let s3 = seaweed();
    let store = client(s3, &s3.bucket(), "not-the-secret");
    let err = store
        .put(&Path::from("x"), PutPayload::from_static(b"x"))
        .await
        .expect_err("a wrongly signed request must fail");
    assert!(!err.to_string().contains(&s3.secret_key));
}

#[tokio::test]
async fn buckets_are_isolated() {
    let s3 = seaweed();
    let (one, two) = (s3.bucket(), s3.bucket());
    assert_ne!(one, two);
    let first = client(s3, &one, &s3.secret_key);
    let second = client(s3, &two, &s3.secret_key);
    let path = Path::from("only-in-one");
    first
        .put(&path, PutPayload::from_static(b"1"))
        .await
        .unwrap();
    assert!(matches!(
        second.get(&path).await,
        Err(object_store::Error::NotFound { .. })
    ));
    let listed: Vec<_> = second.list(None).try_collect().await.unwrap();
    assert!(listed.is_empty(), "a fresh bucket is empty: {listed:?}");
}
