//! Retrying a fallible async operation with exponential backoff.
//!
//! [`RetryPolicy`] says how often and how long to wait; [`retry`] runs the
//! operation until it succeeds, fails with an error the caller's predicate
//! calls permanent, or runs out of attempts. The delay schedule is the pure
//! function [`RetryPolicy::delay_for`]; with jitter on, each actual wait is
//! drawn uniformly from zero up to that delay ("full jitter"), which spreads
//! out clients that failed together.

use std::fmt::Display;
use std::future::Future;
use std::num::NonZeroU32;
use std::time::Duration;

use crate::error::{Error, Result, RetryError};

/// How [`retry`] spaces out its attempts.
///
/// The wait after failed attempt `n` is `initial_delay × factor^(n−1)`, capped
/// at `max_delay`, then, with jitter on, drawn uniformly from `0 ..= that`.
/// The constructor refuses inconsistent settings, so every policy is valid.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    max_attempts: NonZeroU32,
    initial_delay: Duration,
    factor: f64,
    max_delay: Duration,
    jitter: bool,
}

impl Default for RetryPolicy {
    /// Three attempts, waiting up to 1 s then up to 2 s, with jitter.
    fn default() -> Self {
        Self {
            max_attempts: NonZeroU32::MIN.saturating_add(2),
            initial_delay: Duration::from_secs(1),
            factor: 2.0,
            max_delay: Duration::from_secs(30),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// A policy with jitter on; see [`with_jitter`](Self::with_jitter).
    ///
    /// Fails with [`Error::InvalidRetryPolicy`] when `factor` is not a finite
    /// number of at least 1.0 (the wait would shrink or be undefined) or when
    /// `initial_delay` exceeds `max_delay`.
    ///
    /// ```
    /// use std::{num::NonZeroU32, time::Duration};
    /// use bigbrotr_utils::RetryPolicy;
    ///
    /// let attempts = NonZeroU32::new(5).ok_or("zero")?;
    /// let policy = RetryPolicy::new(attempts, Duration::from_millis(100), 2.0, Duration::from_secs(1))?
    ///     .with_jitter(false);
    /// assert_eq!(policy.delay_for(3), Duration::from_millis(400));
    /// assert_eq!(policy.delay_for(10), Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(
        max_attempts: NonZeroU32,
        initial_delay: Duration,
        factor: f64,
        max_delay: Duration,
    ) -> Result<Self> {
        if !factor.is_finite() || factor < 1.0 {
            return Err(Error::InvalidRetryPolicy {
                field: "factor",
                reason: "must be a finite number of at least 1.0",
            });
        }
        if initial_delay > max_delay {
            return Err(Error::InvalidRetryPolicy {
                field: "initial_delay",
                reason: "must not exceed max_delay",
            });
        }
        Ok(Self {
            max_attempts,
            initial_delay,
            factor,
            max_delay,
            jitter: true,
        })
    }

    /// Turns full jitter on or off; off makes every wait exactly
    /// [`delay_for`](Self::delay_for).
    #[must_use]
    pub fn with_jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// The most attempts made, the first one included.
    #[must_use]
    pub fn max_attempts(&self) -> NonZeroU32 {
        self.max_attempts
    }

    /// The wait after the first failed attempt, before jitter.
    #[must_use]
    pub fn initial_delay(&self) -> Duration {
        self.initial_delay
    }

    /// How much each wait grows over the previous one.
    #[must_use]
    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// The longest wait, before jitter.
    #[must_use]
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// Whether waits are drawn uniformly from zero up to the computed delay.
    #[must_use]
    pub fn jitter(&self) -> bool {
        self.jitter
    }

    /// The wait, before jitter, after failed attempt `attempt` (counted from
    /// 1; 0 is read as 1): `initial_delay × factor^(attempt−1)`, capped at
    /// `max_delay` and rounded to the nearest nanosecond.
    #[must_use]
    pub fn delay_for(&self, attempt: u32) -> Duration {
        if self.initial_delay.is_zero() {
            return Duration::ZERO;
        }
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        // Floats cannot panic here: `powi` saturates to infinity, which the
        // cap below catches, and the factor is known to be finite and >= 1.
        let nanos = self.initial_delay.as_nanos() as f64 * self.factor.powi(exponent);
        if nanos.is_nan() || nanos >= self.max_delay.as_nanos() as f64 {
            return self.max_delay;
        }
        duration_from_nanos(nanos.round() as u128).min(self.max_delay)
    }

    fn wait_for(&self, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
        let delay = self.delay_for(attempt);
        if self.jitter {
            full_jitter(delay, rng)
        } else {
            delay
        }
    }
}

/// A duration drawn uniformly from `0 ..= delay`.
fn full_jitter(delay: Duration, rng: &mut fastrand::Rng) -> Duration {
    duration_from_nanos(rng.u128(0..=delay.as_nanos()))
}

fn duration_from_nanos(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let secs = u64::try_from(nanos / NANOS_PER_SEC).unwrap_or(u64::MAX);
    // The remainder is below 10^9 and always fits.
    let subsec = u32::try_from(nanos % NANOS_PER_SEC).unwrap_or(0);
    Duration::new(secs, subsec)
}

/// Runs `op` until it succeeds, waiting between attempts as `policy` says.
///
/// After each failure, `is_retryable` decides: `false` ends at once with
/// [`RetryError::Permanent`]; `true` waits and tries again, unless that was the
/// last allowed attempt, which ends with [`RetryError::Exhausted`]. Both carry
/// the last error and the number of attempts made. Every retry is logged at
/// WARN with the fields `attempt` (the one that failed), `delay_ms` and `error`.
///
/// ```
/// use std::{num::NonZeroU32, time::Duration};
/// use bigbrotr_utils::{retry, RetryPolicy};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?;
/// # runtime.block_on(async {
/// let policy = RetryPolicy::new(NonZeroU32::new(3).ok_or("zero")?, Duration::from_millis(10), 2.0, Duration::from_secs(1))?;
/// let mut calls = 0;
/// let value = retry(&policy, |_: &std::io::Error| true, || {
///     calls += 1;
///     let fail = calls < 2;
///     async move {
///         if fail { Err(std::io::Error::other("not yet")) } else { Ok(42) }
///     }
/// })
/// .await?;
/// assert_eq!((value, calls), (42, 2));
/// # Ok(())
/// # })
/// # }
/// ```
pub async fn retry<T, E, Op, Fut, P>(
    policy: &RetryPolicy,
    mut is_retryable: P,
    mut op: Op,
) -> Result<T, RetryError<E>>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    P: FnMut(&E) -> bool,
    E: Display,
{
    let mut rng = fastrand::Rng::new();
    let mut attempt: u32 = 1;
    loop {
        let error = match op().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        if !is_retryable(&error) {
            return Err(RetryError::Permanent {
                attempts: attempt,
                source: error,
            });
        }
        if attempt >= policy.max_attempts.get() {
            return Err(RetryError::Exhausted {
                attempts: attempt,
                source: error,
            });
        }
        let delay = policy.wait_for(attempt, &mut rng);
        tracing::warn!(
            target: "bigbrotr_utils::retry",
            attempt,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            error = %error,
            "attempt failed, retrying"
        );
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use proptest::prelude::*;
    use tokio::time::Instant;

    use super::*;

    fn attempts(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    fn policy(max_attempts: u32, initial_ms: u64, factor: f64, max_ms: u64) -> RetryPolicy {
        RetryPolicy::new(
            attempts(max_attempts),
            Duration::from_millis(initial_ms),
            factor,
            Duration::from_millis(max_ms),
        )
        .unwrap()
        .with_jitter(false)
    }

    #[derive(Debug, PartialEq, thiserror::Error)]
    enum Failure {
        #[error("transient failure {0}")]
        Transient(u32),
        #[error("fatal failure")]
        Fatal,
    }

    fn is_transient(e: &Failure) -> bool {
        matches!(e, Failure::Transient(_))
    }

    #[test]
    fn default_policy_is_valid_and_documented() {
        let default = RetryPolicy::default();
        assert_eq!(default.max_attempts().get(), 3);
        assert_eq!(default.initial_delay(), Duration::from_secs(1));
        assert_eq!(default.factor(), 2.0);
        assert_eq!(default.max_delay(), Duration::from_secs(30));
        assert!(default.jitter());
        let rebuilt = RetryPolicy::new(
            default.max_attempts(),
            default.initial_delay(),
            default.factor(),
            default.max_delay(),
        )
        .unwrap();
        assert_eq!(rebuilt, default);
    }

    #[test]
    fn with_jitter_switches_jitter() {
        let policy = RetryPolicy::default().with_jitter(false);
        assert!(!policy.jitter());
        assert!(policy.with_jitter(true).jitter());
    }

    #[test]
    fn a_factor_below_one_or_not_finite_is_refused() {
        for factor in [0.999, 0.0, -2.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let result = RetryPolicy::new(
                attempts(3),
                Duration::from_millis(1),
                factor,
                Duration::from_secs(1),
            );
            assert!(
                matches!(
                    result,
                    Err(Error::InvalidRetryPolicy {
                        field: "factor",
                        ..
                    })
                ),
                "factor {factor} gave {result:?}"
            );
        }
    }

    #[test]
    fn an_initial_delay_above_max_delay_is_refused() {
        let result = RetryPolicy::new(
            attempts(3),
            Duration::from_secs(2),
            2.0,
            Duration::from_secs(1),
        );
        assert!(matches!(
            result,
            Err(Error::InvalidRetryPolicy {
                field: "initial_delay",
                reason: "must not exceed max_delay",
            })
        ));
    }

    #[test]
    fn delay_for_grows_exponentially_and_stops_at_max_delay() {
        let policy = policy(10, 100, 2.0, 1_000);
        let delays: Vec<u64> = (1..=6)
            .map(|n| u64::try_from(policy.delay_for(n).as_millis()).unwrap())
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1_000, 1_000]);
    }

    #[test]
    fn delay_for_reads_attempt_zero_as_the_first() {
        let policy = policy(10, 100, 2.0, 1_000);
        assert_eq!(policy.delay_for(0), Duration::from_millis(100));
    }

    #[test]
    fn delay_for_handles_fractional_factors_exactly() {
        let policy = policy(10, 1_000, 1.5, 10_000);
        assert_eq!(policy.delay_for(2), Duration::from_millis(1_500));
        assert_eq!(policy.delay_for(3), Duration::from_millis(2_250));
    }

    #[test]
    fn delay_for_with_factor_one_is_constant() {
        let policy = policy(10, 250, 1.0, 1_000);
        assert_eq!(policy.delay_for(1), Duration::from_millis(250));
        assert_eq!(policy.delay_for(u32::MAX), Duration::from_millis(250));
    }

    #[test]
    fn delay_for_huge_attempts_and_factors_is_capped_without_panicking() {
        let policy = RetryPolicy::new(
            attempts(1),
            Duration::from_nanos(1),
            f64::MAX,
            Duration::MAX,
        )
        .unwrap();
        assert_eq!(policy.delay_for(2), Duration::MAX);
        assert_eq!(policy.delay_for(u32::MAX), Duration::MAX);
    }

    #[test]
    fn delay_for_a_zero_initial_delay_is_always_zero() {
        let policy = policy(10, 0, 1e300, 1_000);
        assert_eq!(policy.delay_for(u32::MAX), Duration::ZERO);
    }

    #[test]
    fn full_jitter_stays_between_zero_and_the_delay() {
        let mut rng = fastrand::Rng::with_seed(7);
        let delay = Duration::from_millis(100);
        let draws: Vec<Duration> = (0..1_000).map(|_| full_jitter(delay, &mut rng)).collect();
        assert!(draws.iter().all(|d| *d <= delay));
        // Uniform draws must actually spread out, not collapse to one value.
        assert!(draws.iter().any(|d| *d < delay / 4));
        assert!(draws.iter().any(|d| *d > delay * 3 / 4));
        assert_eq!(full_jitter(Duration::ZERO, &mut rng), Duration::ZERO);
        assert!(full_jitter(Duration::MAX, &mut rng) <= Duration::MAX);
    }

    #[test]
    fn duration_from_nanos_saturates_instead_of_panicking() {
        assert_eq!(
            duration_from_nanos(1_500_000_001),
            Duration::new(1, 500_000_001)
        );
        assert_eq!(duration_from_nanos(u128::MAX).as_secs(), u64::MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_success_returns_at_once() {
        let start = Instant::now();
        let mut calls = 0;
        let result = retry(&policy(3, 100, 2.0, 1_000), is_transient, || {
            calls += 1;
            async { Ok::<_, Failure>("done") }
        })
        .await;
        assert_eq!(result.unwrap(), "done");
        assert_eq!(calls, 1);
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_after_the_scheduled_delays() {
        let start = Instant::now();
        let mut calls = 0;
        let result = retry(&policy(5, 100, 2.0, 1_000), is_transient, || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(Failure::Transient(n))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(result.unwrap(), 3);
        assert_eq!(start.elapsed(), Duration::from_millis(100 + 200));
    }

    #[tokio::test(start_paused = true)]
    async fn running_out_of_attempts_returns_the_last_error_and_the_count() {
        let start = Instant::now();
        let mut calls = 0;
        let result = retry(&policy(4, 100, 2.0, 300), is_transient, || {
            calls += 1;
            let n = calls;
            async move { Err::<(), _>(Failure::Transient(n)) }
        })
        .await;
        match result {
            Err(RetryError::Exhausted { attempts, source }) => {
                assert_eq!(attempts, 4);
                assert_eq!(source, Failure::Transient(4));
            }
            other => panic!("expected Exhausted, got {other:?}"),
        }
        assert_eq!(start.elapsed(), Duration::from_millis(100 + 200 + 300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_single_attempt_policy_never_waits() {
        let start = Instant::now();
        let result = retry(&policy(1, 100, 2.0, 1_000), is_transient, || async {
            Err::<(), _>(Failure::Transient(1))
        })
        .await;
        assert!(matches!(
            result,
            Err(RetryError::Exhausted {
                attempts: 1,
                source: Failure::Transient(1)
            })
        ));
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_error_stops_at_once() {
        let start = Instant::now();
        let mut calls = 0;
        let result = retry(&policy(5, 100, 2.0, 1_000), is_transient, || {
            calls += 1;
            let n = calls;
            async move {
                if n == 1 {
                    Err::<(), _>(Failure::Transient(n))
                } else {
                    Err(Failure::Fatal)
                }
            }
        })
        .await;
        assert!(matches!(
            result,
            Err(RetryError::Permanent {
                attempts: 2,
                source: Failure::Fatal
            })
        ));
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn jittered_waits_never_exceed_the_schedule() {
        let policy = policy(4, 100, 2.0, 1_000).with_jitter(true);
        let start = Instant::now();
        let result = retry(&policy, is_transient, || async {
            Err::<(), _>(Failure::Transient(0))
        })
        .await;
        assert_eq!(result.unwrap_err().attempts(), 4);
        assert!(start.elapsed() <= Duration::from_millis(100 + 200 + 400));
    }

    /// An event's level and its fields, in order, as `name=value` strings.
    type RecordedEvent = (tracing::Level, Vec<String>);

    /// Records every event.
    #[derive(Clone, Default)]
    struct Recorder {
        events: Arc<Mutex<Vec<RecordedEvent>>>,
    }

    struct Fields(Vec<String>);

    impl tracing::field::Visit for Fields {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0.push(format!("{}={value:?}", field.name()));
        }
    }

    impl tracing::Subscriber for Recorder {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut fields = Fields(Vec::new());
            event.record(&mut fields);
            self.events
                .lock()
                .unwrap()
                .push((*event.metadata().level(), fields.0));
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[tokio::test(start_paused = true)]
    async fn each_retry_is_logged_at_warn_with_attempt_delay_and_error() {
        let recorder = Recorder::default();
        let _guard = tracing::subscriber::set_default(recorder.clone());
        let mut calls = 0;
        let result = retry(&policy(3, 100, 2.0, 1_000), is_transient, || {
            calls += 1;
            let n = calls;
            async move { Err::<(), _>(Failure::Transient(n)) }
        })
        .await;
        assert_eq!(result.unwrap_err().attempts(), 3);

        let events = recorder.events.lock().unwrap().clone();
        let expected = |attempt: u32, delay: u32| {
            (
                tracing::Level::WARN,
                vec![
                    "message=attempt failed, retrying".to_owned(),
                    format!("attempt={attempt}"),
                    format!("delay_ms={delay}"),
                    format!("error=transient failure {attempt}"),
                ],
            )
        };
        assert_eq!(events, vec![expected(1, 100), expected(2, 200)]);
    }

    proptest! {
        #[test]
        fn delay_for_never_decreases_and_never_exceeds_the_cap(
            initial_ms in 0u64..10_000,
            extra_ms in 0u64..100_000,
            factor in 1.0f64..1e6,
            attempt in any::<u32>(),
        ) {
            let policy = policy(10, initial_ms, factor, initial_ms + extra_ms);
            let this = policy.delay_for(attempt);
            let next = policy.delay_for(attempt.saturating_add(1));
            prop_assert!(this <= next);
            prop_assert!(next <= policy.max_delay());
            prop_assert!(policy.delay_for(1) == policy.initial_delay());
        }
    }
}
