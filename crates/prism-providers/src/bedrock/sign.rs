//! Authentication of Bedrock requests: AWS SigV4 through `aws-sigv4` (no crypto of our own), or
//! a Bedrock API key sent as `authorization: Bearer`.
//!
//! Bedrock's signing name is `bedrock` (not `bedrock-runtime`). The canonical URI is the wire
//! path encoded once more, so a model id's `:` travels as `%3A` and is signed as `%253A`
//! (`aws-sigv4`'s default `PercentEncodingMode::Double`). No `x-amz-content-sha256` header: only
//! S3 wants it; the payload hash still goes into the canonical request. Signed headers are `host`
//! (from the URI), `x-amz-date`, `content-type` and, with temporary credentials,
//! `x-amz-security-token`; `accept` stays unsigned because proxies may rewrite it.

use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http::HeaderValue;

use crate::{Credentials, Deployment, TranslateError};

/// The SigV4 signing name of the Bedrock runtime.
pub(crate) const SIGNING_NAME: &str = "bedrock";

/// Headers never signed: they may legitimately change between us and AWS.
const UNSIGNED: &[&str] = &["accept", "user-agent"];

/// Adds the deployment's credentials to `req`: a SigV4 signature for AWS credentials, a bearer
/// header for a Bedrock API key, nothing for [`Credentials::None`] (local simulators).
pub(crate) fn authenticate(
    req: &mut http::Request<Bytes>,
    deployment: &Deployment,
    now: SystemTime,
) -> Result<(), TranslateError> {
    match &deployment.credentials {
        Credentials::None => Ok(()),
        Credentials::ApiKey(key) | Credentials::Bearer(key) => {
            let mut value =
                HeaderValue::try_from(format!("Bearer {}", key.expose())).map_err(|_| {
                    TranslateError::Signing(
                        "the bedrock API key is not a valid header value".into(),
                    )
                })?;
            value.set_sensitive(true);
            req.headers_mut().insert(http::header::AUTHORIZATION, value);
            Ok(())
        }
        Credentials::Aws { access_key_id, secret_access_key, session_token } => {
            let region = region_of(deployment).ok_or_else(|| {
                TranslateError::Signing(
                    "no AWS region configured for the bedrock deployment".into(),
                )
            })?;
            let keys = AwsKeys {
                access_key_id: access_key_id.expose(),
                secret_access_key: secret_access_key.expose(),
                session_token: session_token.as_ref().map(|t| t.expose()),
            };
            sign_v4(req, &keys, &region, SIGNING_NAME, now)
        }
    }
}

/// The deployment's region, or the one in a standard `bedrock-runtime.<region>.amazonaws.com` URL.
pub(crate) fn region_of(deployment: &Deployment) -> Option<String> {
    if let Some(region) = deployment.region.as_deref().filter(|r| !r.is_empty()) {
        return Some(region.to_owned());
    }
    let host = deployment.base_url.split("://").nth(1)?.split(['/', ':']).next()?;
    let rest = host
        .strip_prefix("bedrock-runtime.")
        .or_else(|| host.strip_prefix("bedrock-runtime-fips."))?;
    let region = rest.split('.').next()?;
    (!region.is_empty()).then(|| region.to_owned())
}

/// AWS credentials, borrowed for one signature.
pub(crate) struct AwsKeys<'a> {
    pub(crate) access_key_id: &'a str,
    pub(crate) secret_access_key: &'a str,
    pub(crate) session_token: Option<&'a str>,
}

/// Signs `req` in place with SigV4 for `service` in `region` at `time`.
pub(crate) fn sign_v4(
    req: &mut http::Request<Bytes>,
    keys: &AwsKeys<'_>,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<(), TranslateError> {
    let fail =
        |what: &str, e: &dyn std::fmt::Display| TranslateError::Signing(format!("{what}: {e}"));
    let identity = aws_credential_types::Credentials::new(
        keys.access_key_id,
        keys.secret_access_key,
        keys.session_token.map(str::to_owned),
        None,
        "prism-deployment",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| fail("signing parameters", &e))?
        .into();
    let uri = req.uri().to_string();
    let headers: Vec<(&str, &str)> = req
        .headers()
        .iter()
        .filter(|(name, _)| !UNSIGNED.contains(&name.as_str()))
        .map(|(name, value)| Ok((name.as_str(), value.to_str()?)))
        .collect::<Result<_, http::header::ToStrError>>()
        .map_err(|e| fail("header value", &e))?;
    let signable = SignableRequest::new(
        req.method().as_str(),
        &uri,
        headers.into_iter(),
        SignableBody::Bytes(req.body()),
    )
    .map_err(|e| fail("request", &e))?;
    let (instructions, _signature) =
        sign(signable, &params).map_err(|e| fail("sigv4", &e))?.into_parts();
    instructions.apply_to_request_http1x(req);
    for name in [http::header::AUTHORIZATION.as_str(), "x-amz-security-token"] {
        if let Some(value) = req.headers_mut().get_mut(name) {
            value.set_sensitive(true);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sha2::{Digest, Sha256};

    use super::*;
    use crate::{ProviderKind, Secret};

    const AKID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn keys(session_token: Option<&str>) -> AwsKeys<'_> {
        AwsKeys { access_key_id: AKID, secret_access_key: SECRET, session_token }
    }

    fn request(
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &'static [u8],
    ) -> http::Request<Bytes> {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Bytes::from_static(body)).unwrap()
    }

    fn header<'a>(req: &'a http::Request<Bytes>, name: &str) -> &'a str {
        req.headers().get(name).unwrap().to_str().unwrap()
    }

    /// AWS's published SigV4 test-suite vector `get-vanilla`.
    #[test]
    fn aws_test_suite_get_vanilla() {
        let mut req = request("GET", "https://example.amazonaws.com/", &[], b"");
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160); // 2015-08-30T12:36:00Z
        sign_v4(&mut req, &keys(None), "us-east-1", "service", time).unwrap();
        assert_eq!(header(&req, "x-amz-date"), "20150830T123600Z");
        assert_eq!(
            header(&req, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    /// HMAC-SHA256 from its definition (RFC 2104), to derive signatures independently of `aws-sigv4`.
    fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut block = [0u8; 64];
        if key.len() > 64 {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
        let inner = Sha256::new().chain_update(pad(0x36)).chain_update(msg).finalize();
        Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().to_vec()
    }

    /// The SigV4 signature of `canonical_request`, derived by hand from the specification.
    fn reference_signature(canonical_request: &str, amz_date: &str, region: &str) -> String {
        let date = &amz_date[..8];
        let scope = format!("{date}/{region}/bedrock/aws4_request");
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let mut key = hmac(format!("AWS4{SECRET}").as_bytes(), date.as_bytes());
        for part in [region, "bedrock", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        hex::encode(hmac(&key, string_to_sign.as_bytes()))
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hex::encode(hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    /// A model id with `:` must be signed double-encoded (`%253A`); single encoding is the
    /// classic 403 "signature does not match" for exactly these ids.
    #[test]
    fn colon_in_model_id_is_double_encoded_in_the_canonical_uri() {
        let body: &[u8] = br#"{"messages":[]}"#;
        let uri = "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse";
        let mut req = request(
            "POST",
            uri,
            &[("content-type", "application/json"), ("accept", "application/json")],
            body,
        );
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_689_600);
        sign_v4(&mut req, &keys(None), "us-east-1", "bedrock", time).unwrap();

        let canonical = |path: &str| {
            format!(
                "POST\n{path}\n\ncontent-type:application/json\nhost:bedrock-runtime.us-east-1.amazonaws.com\n\
                 x-amz-date:20250101T000000Z\n\ncontent-type;host;x-amz-date\n{}",
                hex::encode(Sha256::digest(body))
            )
        };
        let double = reference_signature(
            &canonical("/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse"),
            "20250101T000000Z",
            "us-east-1",
        );
        let single = reference_signature(
            &canonical("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"),
            "20250101T000000Z",
            "us-east-1",
        );
        assert_ne!(double, single);
        assert_eq!(
            header(&req, "authorization"),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/bedrock/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date, Signature={double}"
            )
        );
        // The wire URI is untouched: single-encoded.
        assert_eq!(req.uri().path(), "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse");
        assert!(req.headers().get("x-amz-content-sha256").is_none());
    }

    #[test]
    fn session_token_is_sent_and_signed() {
        let mut req = request(
            "POST",
            "https://bedrock-runtime.eu-west-1.amazonaws.com/model/m/converse",
            &[],
            b"{}",
        );
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_689_600);
        sign_v4(&mut req, &keys(Some("FQoGZXIvYXdzEXAMPLETOKEN")), "eu-west-1", "bedrock", time)
            .unwrap();
        assert_eq!(header(&req, "x-amz-security-token"), "FQoGZXIvYXdzEXAMPLETOKEN");
        let auth = header(&req, "authorization");
        assert!(auth.contains("/eu-west-1/bedrock/aws4_request"), "{auth}");
        assert!(auth.contains("SignedHeaders=host;x-amz-date;x-amz-security-token"), "{auth}");
        assert!(req.headers().get("authorization").unwrap().is_sensitive());
    }

    #[test]
    fn api_key_becomes_a_bearer_header_and_region_falls_back_to_the_url() {
        let mut d = Deployment::new(
            ProviderKind::Bedrock,
            "https://bedrock-runtime.ap-south-1.amazonaws.com",
            "m",
        );
        assert_eq!(region_of(&d).as_deref(), Some("ap-south-1"));
        d.credentials = Credentials::Bearer(Secret::new("bedrock-api-key-abc"));
        let mut req = request(
            "POST",
            "https://bedrock-runtime.ap-south-1.amazonaws.com/model/m/converse",
            &[],
            b"{}",
        );
        authenticate(&mut req, &d, SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(header(&req, "authorization"), "Bearer bedrock-api-key-abc");
        assert!(req.headers().get("x-amz-date").is_none());

        let local = Deployment::new(ProviderKind::Bedrock, "http://127.0.0.1:9000", "m");
        assert_eq!(region_of(&local), None);
        let aws = Deployment {
            credentials: Credentials::Aws {
                access_key_id: Secret::new(AKID),
                secret_access_key: Secret::new(SECRET),
                session_token: None,
            },
            ..local
        };
        let err = authenticate(&mut req, &aws, SystemTime::UNIX_EPOCH).unwrap_err();
        assert!(matches!(err, TranslateError::Signing(_)), "{err:?}");
        assert!(!err.to_string().contains(SECRET));
    }
}
