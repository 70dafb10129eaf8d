//! The one retry policy every adapter uses: exponential backoff with full jitter, a maximum
//! number of attempts and a time budget, applied only to errors classified retryable
//! (serialization failures, deadlocks, a connection dropped before the statement committed,
//! Redshift's 1023). Anything else fails at once.

use std::future::Future;
use std::time::{Duration, Instant};

use super::AdapterError;

/// How often and how long to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The first backoff; each later one doubles, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// No retry starts after this much time has passed since the first attempt.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            budget: Duration::from_secs(60),
        }
    }
}

impl AdapterError {
    /// Whether the retry policy may try the operation again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            AdapterError::Database {
                retryable: true,
                ..
            }
        )
    }
}

impl AdapterError {
    /// The same error, never retried: for failures after a statement was submitted, where a
    /// retry would submit it again and could write its rows twice.
    pub fn not_retryable(self) -> AdapterError {
        match self {
            AdapterError::Database { message, .. } => AdapterError::Database {
                message,
                retryable: false,
            },
            other => other,
        }
    }
}

impl RetryPolicy {
    /// A policy with `retries` retries after the first attempt (a profile's `retries:` key).
    pub fn with_retries(retries: u32) -> RetryPolicy {
        RetryPolicy {
            attempts: retries.saturating_add(1),
            ..RetryPolicy::default()
        }
    }

    /// The backoff before retry number `retry` (1-based): a random duration between zero and
    /// the capped exponential step ("full jitter"), so concurrent runs do not retry in step.
    pub fn delay(&self, retry: u32) -> Duration {
        let step = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(self.max_delay);
        let random = uuid::Uuid::new_v4().as_u128() as u64;
        let fraction = (random % 1_000_001) as f64 / 1_000_000.0;
        step.mul_f64(fraction)
    }

    /// Runs `operation` until it succeeds, fails with an error that is not retryable, or the
    /// attempts or the budget run out. Returns the last error.
    pub async fn run<T, F, Fut>(&self, mut operation: F) -> Result<T, AdapterError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AdapterError>>,
    {
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            match operation().await {
                Ok(value) => return Ok(value),
                Err(err)
                    if err.is_retryable()
                        && attempt < self.attempts
                        && started.elapsed() < self.budget =>
                {
                    tokio::time::sleep(self.delay(attempt)).await;
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn retryable() -> AdapterError {
        AdapterError::Database {
            message: "could not serialize access".into(),
            retryable: true,
        }
    }

    fn quick(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            budget: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn retries_retryable_errors_until_success() {
        let calls = AtomicU32::new(0);
        let result = quick(4)
            .run(|| async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(retryable())
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(result.ok(), Some(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn gives_up_after_the_attempts_and_never_retries_other_errors() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = quick(3)
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(retryable())
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let calls = AtomicU32::new(0);
        let result: Result<(), _> = quick(3)
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(AdapterError::Database {
                    message: "syntax error".into(),
                    retryable: false,
                })
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn delays_grow_and_stay_capped() {
        let policy = RetryPolicy::default();
        for retry in 1..30 {
            assert!(policy.delay(retry) <= policy.max_delay);
        }
        let step3 = policy.base_delay * 4;
        assert!(policy.delay(3) <= step3);
    }
}
