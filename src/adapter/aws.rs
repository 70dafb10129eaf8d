//! What the AWS warehouses share: one SDK configuration per target (region, named profile, the
//! usual credential chain, endpoint overrides from `AWS_ENDPOINT_URL` and its per-service
//! forms), `s3://bucket/prefix` locations, and S3 staging (uploads that `COPY` reads, removed
//! after the load).

use std::path::Path;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;

use super::AdapterError;

/// Loads the SDK configuration: the region and profile a target names, or the environment's
/// (`AWS_REGION`, `AWS_PROFILE`, the credentials chain). `AWS_ENDPOINT_URL` and
/// `AWS_ENDPOINT_URL_<SERVICE>` are honoured by the SDK itself.
pub async fn sdk_config(region: Option<&str>, profile: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
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
