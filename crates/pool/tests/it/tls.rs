//! TLS to PostgreSQL, `database.sslmode` by `database.sslmode`, against
//! private clusters: one whose PostgreSQL speaks TLS with a certificate for
//! `localhost` only, one whose PostgreSQL does not.

use std::time::{Duration, Instant};

use bigbrotr_config::{DatabaseConfig, SslMode};
use bigbrotr_pool::{ConnectionPool, Error, TlsProblem};
use bigbrotr_test_support::PrivateCluster;

use crate::support::{fast_retry, pool_config};

fn pool(database: &DatabaseConfig) -> ConnectionPool {
    ConnectionPool::new(database, &pool_config(2), &fast_retry(1)).expect("valid configuration")
}

/// Whether the server sees this session as TLS.
async fn session_ssl(pool: &ConnectionPool) -> bool {
    pool.fetch_one(
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        &[],
    )
    .await
    .expect("pg_stat_ssl answers")
    .get(0)
}

/// One connection attempt, not retried: its error as the pool reports it.
async fn connect_error(database: &DatabaseConfig) -> Error {
    pool(database)
        .get_connection()
        .await
        .expect_err("the connection must be refused")
}

#[tokio::test]
async fn a_server_with_tls_is_verified_as_sslmode_says() {
    let cluster = PrivateCluster::start_with_tls("bigbrotr")
        .await
        .expect("a private cluster with TLS");
    let files = cluster.tls().expect("TLS files").clone();
    let by_name = DatabaseConfig {
        host: files.server_name.to_owned(),
        sslmode: SslMode::VerifyFull,
        sslrootcert: Some(files.root_certificate.clone()),
        ..cluster.direct_database_config()
    };

    // The right authority and the name in the certificate: TLS, verified.
    let verified = pool(&by_name);
    verified.connect().await.expect("verify-full connects");
    assert!(session_ssl(&verified).await);

    // Another authority: refused, and not retried as if transient.
    let wrong_ca = DatabaseConfig {
        sslrootcert: Some(files.unrelated_root_certificate.clone()),
        ..by_name.clone()
    };
    match connect_error(&wrong_ca).await {
        error @ Error::Tls {
            problem: TlsProblem::UntrustedCertificate,
            sslmode: SslMode::VerifyFull,
            ..
        } => {
            assert!(!error.is_transient());
            assert!(
                error
                    .to_string()
                    .ends_with("with sslmode verify-full: the server's certificate is not trusted"),
                "{error}"
            );
        }
        other => panic!("expected an untrusted certificate, got {other:?}"),
    }
    let failed = pool(&wrong_ca);
    assert!(matches!(
        failed.connect().await,
        Err(Error::Tls { .. } | Error::Unavailable { .. })
    ));
    assert_eq!(failed.stats().connect_errors, 1, "tried once, not retried");

    // 127.0.0.1 is not in the certificate: verify-full refuses it,
    // verify-ca (the chain only) accepts it.
    let by_address = DatabaseConfig {
        host: "127.0.0.1".to_owned(),
        ..by_name.clone()
    };
    assert!(matches!(
        connect_error(&by_address).await,
        Error::Tls {
            problem: TlsProblem::WrongHostName,
            ..
        }
    ));
    let chain_only = pool(&DatabaseConfig {
        sslmode: SslMode::VerifyCa,
        ..by_address.clone()
    });
    chain_only.connect().await.expect("verify-ca connects");
    assert!(session_ssl(&chain_only).await);
    // verify-ca still wants the right authority.
    assert!(matches!(
        connect_error(&DatabaseConfig {
            sslmode: SslMode::VerifyCa,
            ..wrong_ca.clone()
        })
        .await,
        Error::Tls {
            problem: TlsProblem::UntrustedCertificate,
            ..
        }
    ));

    // require and prefer encrypt without checking anything.
    for mode in [SslMode::Require, SslMode::Prefer] {
        let unchecked = pool(&DatabaseConfig {
            sslmode: mode,
            sslrootcert: None,
            ..by_address.clone()
        });
        unchecked.connect().await.expect("connects");
        assert!(session_ssl(&unchecked).await, "{mode:?}");
    }

    // disable stays in clear even where TLS is offered.
    let clear = pool(&DatabaseConfig {
        sslmode: SslMode::Disable,
        sslrootcert: None,
        ..by_address
    });
    clear.connect().await.expect("connects");
    assert!(!session_ssl(&clear).await);
}

#[tokio::test]
async fn a_statement_cut_off_on_a_tls_connection_is_cancelled_through_tls() {
    let cluster = PrivateCluster::start_with_tls("bigbrotr")
        .await
        .expect("a private cluster with TLS");
    let files = cluster.tls().expect("TLS files");
    let database = DatabaseConfig {
        host: files.server_name.to_owned(),
        sslmode: SslMode::VerifyFull,
        sslrootcert: Some(files.root_certificate.clone()),
        ..cluster.direct_database_config()
    };
    let mut config = pool_config(2);
    config.command_timeout = Duration::from_millis(500);
    let pool = ConnectionPool::new(&database, &config, &fast_retry(1)).expect("valid");
    pool.connect().await.expect("connects");
    assert!(matches!(
        pool.execute("SELECT pg_sleep(60)", &[]).await,
        Err(Error::Timeout { .. })
    ));
    // The server stops the statement once the cancel request, sent over
    // TLS, reached it: long before its 60 s.
    let started = Instant::now();
    loop {
        let running: i64 = pool
            .fetch_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE query = 'SELECT pg_sleep(60)' AND state = 'active'",
                &[],
            )
            .await
            .expect("pg_stat_activity answers")
            .get(0);
        if running == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the statement still runs"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pool.disconnect(Duration::from_secs(5)).await;
    assert_eq!(pool.stats().discarded, 1);
}

#[tokio::test]
async fn a_server_without_tls_is_refused_by_require_and_used_in_clear_otherwise() {
    let cluster = PrivateCluster::start("bigbrotr")
        .await
        .expect("a private cluster");
    let plain = cluster.direct_database_config();

    let required = DatabaseConfig {
        sslmode: SslMode::Require,
        ..plain.clone()
    };
    match connect_error(&required).await {
        error @ Error::Connect { .. } => assert!(!error.is_transient(), "{error:?}"),
        other => panic!("expected a refused connection, got {other:?}"),
    }

    for mode in [SslMode::Prefer, SslMode::Disable] {
        let pool = pool(&DatabaseConfig {
            sslmode: mode,
            ..plain.clone()
        });
        pool.connect().await.expect("connects");
        assert!(!session_ssl(&pool).await, "{mode:?}");
    }
}
