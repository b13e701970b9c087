//! TLS to the database: the rustls connector every connection of BigBrotr
//! is made with, following `database.sslmode` as libpq does.
//!
//! - `disable`: the driver never asks for TLS (the connector is unused).
//! - `prefer`: the driver asks; a server that declines gets the session in
//!   clear. The certificate is not checked, as in libpq.
//! - `require`: TLS or nothing, certificate not checked: the traffic is
//!   encrypted, but whoever answers is trusted.
//! - `verify-ca`: the certificate must chain to `sslrootcert`.
//! - `verify-full`: that, and it must name `host` (rustls's usual check).
//!
//! rustls has no "chain only" or "no check" mode of its own, so those two
//! are small verifiers here; both still check the handshake signatures with
//! the certificate's key. ring is the only crypto provider, named
//! explicitly so that no process-wide default is needed.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use bigbrotr_config::{DatabaseConfig, SslMode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::error::{Error, Result};

/// What every connection of a pool is made with; cheap to clone. With
/// `sslmode: disable` the driver never calls it.
pub type TlsConnector = tokio_postgres_rustls::MakeRustlsConnect;

/// The driver's TLS mode for `mode`: whether it asks the server for TLS and
/// whether it settles for a session in clear. How the certificate is
/// checked is the [`tls_connector`]'s part.
#[must_use]
pub fn driver_ssl_mode(mode: SslMode) -> tokio_postgres::config::SslMode {
    use tokio_postgres::config::SslMode as Driver;
    match mode {
        SslMode::Disable => Driver::Disable,
        SslMode::Prefer => Driver::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Driver::Require,
    }
}

/// The connector for `database`: reads `database.sslrootcert` when the mode
/// verifies the server.
pub fn tls_connector(database: &DatabaseConfig) -> Result<TlsConnector> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|source| Error::TlsConfig { source })?;
    let roots = || match &database.sslrootcert {
        Some(path) => root_certificates(path),
        None => Err(Error::InvalidConfig {
            problems: vec![bigbrotr_config::Problem::new(
                "database.sslrootcert",
                format!("must be set when sslmode is {}", database.sslmode.as_str()),
            )],
        }),
    };
    let config = match database.sslmode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked { algorithms })),
        SslMode::VerifyCa => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly {
                roots: Arc::new(roots()?),
                algorithms,
            })),
        SslMode::VerifyFull => builder.with_root_certificates(roots()?),
    };
    Ok(TlsConnector::new(config.with_no_client_auth()))
}

/// Every certificate of the PEM file at `path`.
fn root_certificates(path: &Path) -> Result<RootCertStore> {
    let read_error = |source| Error::ReadRootCertificate {
        path: path.to_path_buf(),
        source,
    };
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(path).map_err(read_error)? {
        roots
            .add(certificate.map_err(read_error)?)
            .map_err(|source| Error::InvalidRootCertificate {
                path: path.to_path_buf(),
                source,
            })?;
    }
    if roots.is_empty() {
        return Err(Error::NoRootCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(roots)
}

/// Why a TLS handshake with the server failed, read from rustls's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsProblem {
    /// The server's certificate does not chain to `sslrootcert`, or is
    /// expired, revoked or malformed.
    UntrustedCertificate,
    /// The certificate is trusted but does not name the host connected to
    /// (`verify-full` only).
    WrongHostName,
    /// The handshake failed otherwise (no common protocol version or cipher,
    /// a bad signature, an alert from the server).
    Handshake,
}

impl fmt::Display for TlsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UntrustedCertificate => "the server's certificate is not trusted",
            Self::WrongHostName => "the server's certificate does not name the host",
            Self::Handshake => "the TLS handshake failed",
        })
    }
}

/// The TLS problem behind a connection error, when rustls reported one.
pub(crate) fn tls_problem(error: &tokio_postgres::Error) -> Option<TlsProblem> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        let rustls_error = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls_error) = rustls_error {
            return Some(match rustls_error {
                rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ) => TlsProblem::WrongHostName,
                rustls::Error::InvalidCertificate(_) => TlsProblem::UntrustedCertificate,
                _ => TlsProblem::Handshake,
            });
        }
        current = e.source();
    }
    None
}

/// Accepts any certificate (`prefer`, `require`); the handshake signatures
/// are still checked with its key.
#[derive(Debug)]
struct Unchecked {
    algorithms: WebPkiSupportedAlgorithms,
}

/// Accepts a certificate that chains to the roots, whatever names it holds
/// (`verify-ca`).
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let certificate = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &certificate,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn database(mode: SslMode, root: Option<&Path>) -> DatabaseConfig {
        DatabaseConfig {
            sslmode: mode,
            sslrootcert: root.map(Path::to_path_buf),
            ..DatabaseConfig::default()
        }
    }

    #[test]
    fn the_driver_asks_for_tls_unless_disabled_and_settles_for_clear_only_when_preferred() {
        use tokio_postgres::config::SslMode as Driver;
        assert_eq!(driver_ssl_mode(SslMode::Disable), Driver::Disable);
        assert_eq!(driver_ssl_mode(SslMode::Prefer), Driver::Prefer);
        for mode in [SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull] {
            assert_eq!(driver_ssl_mode(mode), Driver::Require);
        }
    }

    #[test]
    fn modes_that_check_nothing_need_no_root_certificate() {
        for mode in [SslMode::Disable, SslMode::Prefer, SslMode::Require] {
            assert!(tls_connector(&database(mode, None)).is_ok());
        }
    }

    #[test]
    fn verifying_modes_refuse_a_missing_empty_or_broken_root_file() {
        assert!(matches!(
            tls_connector(&database(SslMode::VerifyFull, None)),
            Err(Error::InvalidConfig { problems }) if problems[0].path == "database.sslrootcert"
        ));
        let dir = tempfile::tempdir().expect("a temporary folder");
        let missing = dir.path().join("missing.crt");
        assert!(matches!(
            tls_connector(&database(SslMode::VerifyCa, Some(&missing))),
            Err(Error::ReadRootCertificate { path, .. }) if path == missing
        ));
        let empty = dir.path().join("empty.crt");
        std::fs::write(&empty, "no certificate here\n").expect("writable");
        assert!(matches!(
            tls_connector(&database(SslMode::VerifyFull, Some(&empty))),
            Err(Error::NoRootCertificate { path }) if path == empty
        ));
        let garbage = dir.path().join("garbage.crt");
        let mut file = std::fs::File::create(&garbage).expect("writable");
        writeln!(
            file,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
        )
        .expect("writable");
        assert!(matches!(
            tls_connector(&database(SslMode::VerifyFull, Some(&garbage))),
            Err(Error::InvalidRootCertificate { path, .. }) if path == garbage
        ));
    }

    #[test]
    fn problems_display_as_sentences() {
        assert_eq!(
            TlsProblem::WrongHostName.to_string(),
            "the server's certificate does not name the host"
        );
        assert_eq!(
            TlsProblem::UntrustedCertificate.to_string(),
            "the server's certificate is not trusted"
        );
        assert_eq!(
            TlsProblem::Handshake.to_string(),
            "the TLS handshake failed"
        );
    }
}
