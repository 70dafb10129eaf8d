//! What the AWS warehouses share: one SDK configuration per target (region, named profile, the
//! usual credential chain, endpoint overrides from `AWS_ENDPOINT_URL` and its per-service
//! forms), `s3://bucket/prefix` locations, and S3 staging (uploads that `COPY` reads, removed
//! after the load).

use std::path::Path;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;

use super::AdapterError;

/// Loads the SDK configuration: the region and profile a target names, or the environment's
/// (`AWS_REGION`, `AWS_PROFILE`, the credentials chain). `AWS_ENDPOINT_URL` and
/// `AWS_ENDPOINT_URL_<SERVICE>` are honoured by the SDK itself.
pub async fn sdk_config(region: Option<&str>, profile: Option<&str>) -> SdkConfig {
    sdk_config_for(&AwsSettings {
        region,
        profile,
        ..AwsSettings::default()
    })
    .await
}

/// What a target may say about its AWS clients.
#[derive(Debug, Clone, Copy, Default)]
pub struct AwsSettings<'a> {
    pub region: Option<&'a str>,
    pub profile: Option<&'a str>,
    /// One endpoint for every service (the target's `endpoint_url`).
    pub endpoint_url: Option<&'a str>,
    /// Attempts per call the SDK makes on throttling and transport errors, the first included.
    pub max_attempts: Option<u32>,
    /// Keys written in the target (`aws_access_key_id`, `aws_secret_access_key`).
    pub keys: Option<(&'a str, &'a str)>,
}

/// Loads the SDK configuration for [`AwsSettings`].
pub async fn sdk_config_for(settings: &AwsSettings<'_>) -> SdkConfig {
    let (region, profile) = (settings.region, settings.profile);
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(url) = settings.endpoint_url.filter(|u| !u.is_empty()) {
        loader = loader.endpoint_url(url);
    }
    if let Some(attempts) = settings.max_attempts {
        loader = loader.retry_config(
            aws_config::retry::RetryConfig::standard().with_max_attempts(attempts.max(1)),
        );
    }
    if let Some((id, secret)) = settings.keys {
        loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
            id,
            secret,
            None,
            None,
            "strata-target",
        ));
    }
    if let Some(region) = region.filter(|r| !r.is_empty()) {
        loader = loader.region(Region::new(region.to_string()));
    }
    if let Some(profile) = profile.filter(|p| !p.is_empty()) {
        loader = loader.profile_name(profile);
    }
    loader.load().await
}

/// An SDK error with its causes, as one line (the SDK's own `Display` says only "service error").
pub fn error_text(err: &(dyn std::error::Error + 'static)) -> String {
    DisplayErrorContext(err).to_string()
}

/// How a remote statement is polled until it ends (Redshift's `DescribeStatement`,
/// Athena's `GetQueryExecution`): the first wait, each later one doubled up to `max`
/// (half of each wait random, so concurrent statements do not poll in step), until `deadline`.
#[derive(Debug, Clone, Copy)]
pub struct Polling {
    pub first: Duration,
    pub max: Duration,
    pub deadline: Duration,
}

impl Default for Polling {
    fn default() -> Self {
        Polling {
            first: Duration::from_millis(20),
            max: Duration::from_secs(2),
            deadline: Duration::from_secs(12 * 3600),
        }
    }
}

impl Polling {
    pub fn wait(&self, poll: u32) -> Duration {
        let step = self
            .first
            .saturating_mul(1u32 << poll.min(16))
            .min(self.max);
        let random = (uuid::Uuid::new_v4().as_u128() % 1_000_001) as f64 / 1_000_000.0;
        step.mul_f64(0.5 + random / 2.0)
    }
}

/// An `s3://bucket/prefix` location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// The key, or a prefix ending in `/` (empty for the bucket's root).
    pub key: String,
}

impl S3Location {
    pub fn parse(uri: &str) -> Result<S3Location, String> {
        let rest = uri
            .strip_prefix("s3://")
            .ok_or_else(|| format!("`{uri}` is not an S3 location; write s3://bucket/prefix/"))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!(
                "`{uri}` names no bucket; write s3://bucket/prefix/"
            ));
        }
        Ok(S3Location {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// The object `name` under this location taken as a prefix.
    pub fn join(&self, name: &str) -> S3Location {
        let prefix = if self.key.is_empty() || self.key.ends_with('/') {
            self.key.clone()
        } else {
            format!("{}/", self.key)
        };
        S3Location {
            bucket: self.bucket.clone(),
            key: format!("{prefix}{name}"),
        }
    }

    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// S3 through the SDK, path-style where an endpoint is overridden (S3-compatible stores and
/// local stand-ins do not serve virtual-hosted buckets).
#[derive(Debug, Clone)]
pub struct S3 {
    client: aws_sdk_s3::Client,
}

impl S3 {
    pub fn new(config: &SdkConfig) -> S3 {
        let overridden = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .any(|key| std::env::var_os(key).is_some_and(|v| !v.is_empty()));
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(overridden)
            .build();
        S3 {
            client: aws_sdk_s3::Client::from_conf(s3_config),
        }
    }

    /// Uploads a local file to `to`.
    pub async fn upload(&self, path: &Path, to: &S3Location) -> Result<(), AdapterError> {
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| AdapterError::Database {
                message: format!("cannot read `{}`: {e}", path.display()),
                retryable: false,
            })?;
        self.client
            .put_object()
            .bucket(&to.bucket)
            .key(&to.key)
            .body(body)
            .send()
            .await
            .map_err(|e| AdapterError::Database {
                message: format!("cannot upload to {}: {}", to.uri(), error_text(&e)),
                retryable: false,
            })?;
        Ok(())
    }

    /// Downloads one object to a local file.
    pub async fn download(&self, from: &S3Location, to: &Path) -> Result<(), AdapterError> {
        let failed = |message: String| AdapterError::Database {
            message: format!("cannot download {}: {message}", from.uri()),
            retryable: false,
        };
        let object = self
            .client
            .get_object()
            .bucket(&from.bucket)
            .key(&from.key)
            .send()
            .await
            .map_err(|e| failed(error_text(&e)))?;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| failed(e.to_string()))?
            .into_bytes();
        std::fs::write(to, &bytes).map_err(|e| failed(e.to_string()))
    }

    /// Removes one object; a missing object is not an error (S3 says nothing either).
    pub async fn remove(&self, at: &S3Location) -> Result<(), AdapterError> {
        self.client
            .delete_object()
            .bucket(&at.bucket)
            .key(&at.key)
            .send()
            .await
            .map_err(|e| AdapterError::Database {
                message: format!("cannot remove {}: {}", at.uri(), error_text(&e)),
                retryable: false,
            })?;
        Ok(())
    }

    /// Every object key under a prefix, paged by `ListObjectsV2` (1,000 a page).
    pub async fn list(&self, prefix: &S3Location) -> Result<Vec<String>, AdapterError> {
        Ok(self
            .list_sized(prefix)
            .await?
            .into_iter()
            .map(|(key, _)| key)
            .collect())
    }

    /// Every object under a prefix with its size, paged by `ListObjectsV2` (1,000 a page).
    pub async fn list_sized(
        &self,
        prefix: &S3Location,
    ) -> Result<Vec<(String, u64)>, AdapterError> {
        let mut keys = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&prefix.bucket)
                .prefix(&prefix.key)
                .set_continuation_token(next.take())
                .send()
                .await
                .map_err(|e| AdapterError::Database {
                    message: format!("cannot list {}: {}", prefix.uri(), error_text(&e)),
                    retryable: false,
                })?;
            keys.extend(page.contents().iter().filter_map(|o| {
                o.key().map(|k| {
                    (
                        k.to_string(),
                        u64::try_from(o.size().unwrap_or(0)).unwrap_or(0),
                    )
                })
            }));
            match page.next_continuation_token() {
                Some(token) if page.is_truncated() == Some(true) => next = Some(token.to_string()),
                _ => return Ok(keys),
            }
        }
    }

    /// Removes every object under a prefix, 1,000 keys a `DeleteObjects` call; returns how
    /// many went.
    pub async fn remove_prefix(&self, prefix: &S3Location) -> Result<usize, AdapterError> {
        let keys = self.list(prefix).await?;
        for batch in keys.chunks(1000) {
            let objects = batch
                .iter()
                .map(|key| {
                    aws_sdk_s3::types::ObjectIdentifier::builder()
                        .key(key)
                        .build()
                        .map_err(|e| AdapterError::Internal(format!("an S3 key: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let delete = aws_sdk_s3::types::Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| AdapterError::Internal(format!("an S3 delete: {e}")))?;
            let answer = self
                .client
                .delete_objects()
                .bucket(&prefix.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| AdapterError::Database {
                    message: format!(
                        "cannot remove objects under {}: {}",
                        prefix.uri(),
                        error_text(&e)
                    ),
                    retryable: false,
                })?;
            if let Some(error) = answer.errors().first() {
                return Err(AdapterError::Database {
                    message: format!(
                        "cannot remove s3://{}/{}: {}",
                        prefix.bucket,
                        error.key().unwrap_or_default(),
                        error.message().unwrap_or_default()
                    ),
                    retryable: false,
                });
            }
        }
        Ok(keys.len())
    }

    /// Checks that a location can be listed (`strata debug`).
    pub async fn check(&self, at: &S3Location) -> Result<(), AdapterError> {
        self.client
            .list_objects_v2()
            .bucket(&at.bucket)
            .prefix(&at.key)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| AdapterError::Connect {
                adapter: "s3",
                message: format!("cannot list {}: {}", at.uri(), error_text(&e)),
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_back_off_with_jitter_up_to_the_cap() {
        let polling = Polling::default();
        let first = polling.wait(0);
        assert!(first >= Duration::from_millis(10) && first <= Duration::from_millis(20));
        let later = polling.wait(3);
        assert!(later >= Duration::from_millis(80) && later <= Duration::from_millis(160));
        assert!(polling.wait(30) <= polling.max);
    }

    #[test]
    fn locations_parse_and_join() {
        let stage = S3Location::parse("s3://lake/staging").unwrap();
        assert_eq!(stage.bucket, "lake");
        assert_eq!(stage.join("a.csv").uri(), "s3://lake/staging/a.csv");
        let root = S3Location::parse("s3://lake").unwrap();
        assert_eq!(root.join("a.csv").uri(), "s3://lake/a.csv");
        let slash = S3Location::parse("s3://lake/p/").unwrap();
        assert_eq!(slash.join("a.csv").key, "p/a.csv");
        assert!(S3Location::parse("lake/p").is_err());
        assert!(S3Location::parse("s3:///p").is_err());
    }
}
