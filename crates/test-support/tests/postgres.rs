//! The PostgreSQL harness serves real databases: a client (sqlx) connects to the URL it gives,
//! creates a table, writes and reads rows; two databases are isolated from each other.

use sqlx::{Connection, PgConnection, Row};

use ms_test_support::postgres::postgres;

#[tokio::test]
async fn each_database_is_fresh_and_isolated() {
    let server = postgres();
    let (one, two) = (server.database(), server.database());
    assert_ne!(one, two);

    let mut first = PgConnection::connect(&one).await.unwrap();
    sqlx::query("CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT NOT NULL)")
        .execute(&mut first)
        .await
        .unwrap();
    sqlx::query("INSERT INTO items VALUES ($1, $2), ($3, $4)")
        .bind(1_i64)
        .bind("one")
        .bind(2_i64)
        .bind("two")
        .execute(&mut first)
        .await
        .unwrap();
    let names: Vec<String> = sqlx::query("SELECT name FROM items ORDER BY id")
        .fetch_all(&mut first)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(names, ["one", "two"]);

    let mut second = PgConnection::connect(&two).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut second)
    .await
    .unwrap();
    assert_eq!(
        tables, 0,
        "the second database must not see the first one's table"
    );
    let err = sqlx::query("SELECT * FROM items")
        .execute(&mut second)
        .await
        .expect_err("no table `items` in the second database");
    assert!(err.to_string().contains("items"), "{err}");
}

#[tokio::test]
async fn the_server_is_postgresql_15() {
    let mut conn = PgConnection::connect(&postgres().database()).await.unwrap();
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(version.starts_with("15."), "{version}");
}
