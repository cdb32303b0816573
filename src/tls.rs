//! TLS for listening endpoints: a validated `TlsConfig` → a rustls `ServerConfig`.
//!
//! [`server_config`] reads the PEM files of an endpoint's `tls` block (paths already resolved
//! against the node directory by `config::load_dir`), maps Crossbar's `ciphers` string to
//! rustls's *ring* cipher suites, and requires client certificates when `ca_certificates` is
//! non-empty. `config` calls it for every `tls` block so that a bad file is a config error with
//! its key path; the transports call it again when they bind and wrap accepted streams with
//! `tokio_rustls::TlsAcceptor::from(server_config)`.
//!
//! rustls implements ECDHE key exchange only (no finite-field DH, hence no `dhparam`), and
//! only AEAD cipher suites: AES-GCM and ChaCha20-Poly1305, for TLS 1.2 and 1.3.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{
    Error as TlsError, InconsistentKeys, RootCertStore, ServerConfig, SupportedCipherSuite,
};

use crate::config::{TlsConfig, TlsVersion};

/// One problem of a `tls` block: (sub-key of the block such as `"key"`, `"ciphers"` or
/// `"ca_certificates[1]"`, lower-case message).
pub type TlsProblem = (String, String);

/// The cipher suites junction can offer, with the names `ciphers` may use for them: the IANA
/// name, the OpenSSL name (what Crossbar passes to OpenSSL) and rustls's name. Matching ignores
/// ASCII case.
fn suite_table() -> [(SupportedCipherSuite, &'static [&'static str]); 9] {
    use ring::cipher_suite as cs;
    [
        (
            cs::TLS13_AES_128_GCM_SHA256,
            &["TLS_AES_128_GCM_SHA256", "TLS13_AES_128_GCM_SHA256"],
        ),
        (
            cs::TLS13_AES_256_GCM_SHA384,
            &["TLS_AES_256_GCM_SHA384", "TLS13_AES_256_GCM_SHA384"],
        ),
        (
            cs::TLS13_CHACHA20_POLY1305_SHA256,
            &[
                "TLS_CHACHA20_POLY1305_SHA256",
                "TLS13_CHACHA20_POLY1305_SHA256",
            ],
        ),
        (
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            &[
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "ECDHE-ECDSA-AES128-GCM-SHA256",
            ],
        ),
        (
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            &[
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                "ECDHE-ECDSA-AES256-GCM-SHA384",
            ],
        ),
        (
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            &[
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                "ECDHE-ECDSA-CHACHA20-POLY1305",
            ],
        ),
        (
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            &[
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "ECDHE-RSA-AES128-GCM-SHA256",
            ],
        ),
        (
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            &[
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                "ECDHE-RSA-AES256-GCM-SHA384",
            ],
        ),
        (
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            &[
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
                "ECDHE-RSA-CHACHA20-POLY1305",
            ],
        ),
    ]
}

/// The rustls suite a `ciphers` entry names.
fn suite_by_name(name: &str) -> Option<SupportedCipherSuite> {
    suite_table()
        .into_iter()
        .find(|(_, names)| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
        .map(|(suite, _)| suite)
}

/// Splits an OpenSSL cipher list: names separated by colons (commas and spaces are accepted
/// too, as by OpenSSL).
pub fn split_cipher_list(list: &str) -> Vec<String> {
    list.split([':', ',', ' ', '\t', '\n'])
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Every name `ciphers` accepts (IANA and OpenSSL spellings; rustls's `TLS13_` spellings are
/// accepted too), for error messages and the docs.
pub fn supported_cipher_names() -> Vec<&'static str> {
    suite_table()
        .iter()
        .flat_map(|(_, names)| names.iter().copied().filter(|n| !n.starts_with("TLS13_")))
        .collect()
}

/// The cipher suites to offer: rustls's defaults without `ciphers`. With `ciphers`, the named
/// TLS 1.2 suites in config order, and the named TLS 1.3 suites, or all TLS 1.3 suites when none
/// is named (as OpenSSL, where Crossbar's `ciphers` string does not govern TLS 1.3).
fn cipher_suites(names: Option<&[String]>) -> Result<Vec<SupportedCipherSuite>, String> {
    let Some(names) = names else {
        return Ok(ring::DEFAULT_CIPHER_SUITES.to_vec());
    };
    let mut unknown = Vec::new();
    let mut chosen: Vec<SupportedCipherSuite> = Vec::new();
    for name in names {
        match suite_by_name(name) {
            Some(suite) => {
                if !chosen.iter().any(|s| s.suite() == suite.suite()) {
                    chosen.push(suite);
                }
            }
            None => unknown.push(format!("{name:?}")),
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "unknown or unsupported cipher suite{} {}: rustls offers only ECDHE key exchange with \
             AES-GCM or ChaCha20-Poly1305; known names: {}",
            if unknown.len() == 1 { "" } else { "s" },
            unknown.join(", "),
            supported_cipher_names().join(", ")
        ));
    }
    if chosen.is_empty() {
        return Err("no cipher suite given".into());
    }
    let is13 = |s: &SupportedCipherSuite| matches!(s, SupportedCipherSuite::Tls13(_));
    if !chosen.iter().any(is13) {
        chosen.extend(ring::ALL_CIPHER_SUITES.iter().copied().filter(is13));
    }
    Ok(chosen)
}

/// Reads one file, describing a failure.
fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Every certificate of a PEM file (at least one).
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|e| format!("invalid PEM in {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "no certificate in {} (expected PEM \"BEGIN CERTIFICATE\" blocks)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 RSA or SEC1 EC).
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => format!(
            "no private key in {} (expected a PEM \"PRIVATE KEY\", \"RSA PRIVATE KEY\" or \
             \"EC PRIVATE KEY\" block)",
            path.display()
        ),
        e => format!("invalid PEM in {}: {e}", path.display()),
    })
}

/// Builds the rustls server configuration of one endpoint's `tls` block.
///
/// ALPN is `http/1.1` (clients that send no ALPN, such as RawSocket clients, are unaffected).
///
/// # Errors
///
/// Every problem found, each as (sub-key of the `tls` block, message): unreadable or invalid
/// PEM files (`key`, `certificate`, `chain_certificates[i]`, `ca_certificates[i]`), a key that
/// does not match the certificate (`key`), unknown cipher suite names or suites that cannot
/// serve the key or `min_version` (`ciphers`).
pub fn server_config(tls: &TlsConfig) -> Result<Arc<ServerConfig>, Vec<TlsProblem>> {
    let mut problems: Vec<TlsProblem> = Vec::new();
    let mut problem = |key: String, message: String| problems.push((key, message));

    let key = read_key(&tls.key)
        .map_err(|m| problem("key".into(), m))
        .ok();
    let certificate = read_certificates(&tls.certificate)
        .map_err(|m| problem("certificate".into(), m))
        .ok();
    let mut chain = Vec::new();
    for (i, path) in tls.chain_certificates.iter().enumerate() {
        match read_certificates(path) {
            Ok(certs) => chain.extend(certs),
            Err(m) => problem(format!("chain_certificates[{i}]"), m),
        }
    }
    let mut roots = RootCertStore::empty();
    let mut roots_ok = true;
    for (i, path) in tls.ca_certificates.iter().enumerate() {
        match read_certificates(path) {
            Ok(certs) => {
                for (j, cert) in certs.into_iter().enumerate() {
                    if let Err(e) = roots.add(cert) {
                        roots_ok = false;
                        problem(
                            format!("ca_certificates[{i}]"),
                            format!(
                                "certificate {} in {} is not a usable CA certificate: {e}",
                                j + 1,
                                path.display()
                            ),
                        );
                    }
                }
            }
            Err(m) => {
                roots_ok = false;
                problem(format!("ca_certificates[{i}]"), m);
            }
        }
    }
    let suites = cipher_suites(tls.ciphers.as_deref())
        .map_err(|m| problem("ciphers".into(), m))
        .ok();

    let provider = Arc::new(CryptoProvider {
        cipher_suites: suites.clone().unwrap_or_default(),
        ..ring::default_provider()
    });

    // The key must load and match the certificate.
    let mut certified = None;
    if let (Some(key), Some(certificate)) = (key, certificate) {
        match provider.key_provider.load_private_key(key.clone_key()) {
            Err(e) => problem(
                "key".into(),
                format!("unusable private key in {}: {e}", tls.key.display()),
            ),
            Ok(signing_key) => {
                let algorithm = signing_key.algorithm();
                let mut cert_chain = certificate;
                cert_chain.extend(chain);
                match CertifiedKey::new(cert_chain.clone(), signing_key).keys_match() {
                    Ok(()) | Err(TlsError::InconsistentKeys(InconsistentKeys::Unknown)) => {
                        certified = Some((cert_chain, key, algorithm));
                    }
                    Err(TlsError::InconsistentKeys(InconsistentKeys::KeyMismatch)) => problem(
                        "key".into(),
                        format!(
                            "the private key in {} does not match the certificate in {}",
                            tls.key.display(),
                            tls.certificate.display()
                        ),
                    ),
                    Err(e) => problem(
                        "certificate".into(),
                        format!("invalid certificate in {}: {e}", tls.certificate.display()),
                    ),
                }
            }
        }
    }

    // Named TLS 1.2 suites must be usable: with `min_version` 1.2, and with the key (TLS 1.2
    // suites are tied to RSA or ECDSA keys; TLS 1.3 suites serve any key).
    if let (Some(names), Some(suites)) = (&tls.ciphers, &suites) {
        let tls12: Vec<&SupportedCipherSuite> = suites
            .iter()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls12(_)))
            .collect();
        if !tls12.is_empty() && tls.min_version == TlsVersion::V1_3 {
            problem(
                "ciphers".into(),
                format!(
                    "TLS 1.2 cipher suites have no effect with min_version \"1.3\": {}",
                    names
                        .iter()
                        .filter(|n| suite_by_name(n)
                            .is_some_and(|s| matches!(s, SupportedCipherSuite::Tls12(_))))
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        } else if let Some((_, _, algorithm)) = &certified {
            if !tls12.is_empty()
                && !tls12
                    .iter()
                    .any(|s| s.usable_for_signature_algorithm(*algorithm))
            {
                problem(
                    "ciphers".into(),
                    format!(
                        "none of the TLS 1.2 cipher suites can be used with the {algorithm:?} key \
                         in {}",
                        tls.key.display()
                    ),
                );
            }
        }
    }

    // (Without usable roots, the files were blamed already.)
    let verifier = if tls.ca_certificates.is_empty() || !roots_ok {
        None
    } else {
        match WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()
        {
            Ok(verifier) => Some(verifier),
            Err(e) => {
                problem(
                    "ca_certificates".into(),
                    format!("cannot verify client certificates: {e}"),
                );
                None
            }
        }
    };

    if !problems.is_empty() {
        return Err(problems);
    }
    let Some((cert_chain, key, _)) = certified else {
        return Err(vec![(
            "certificate".into(),
            "no certificate and key loaded".into(),
        )]);
    };
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.min_version {
        TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::V1_3 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| vec![("ciphers".to_owned(), e.to_string())])?;
    let builder = match verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(cert_chain, key)
        .map_err(|e| vec![("certificate".to_owned(), e.to_string())])?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
