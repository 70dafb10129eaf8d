//! Versions as dbt writes them: `major.minor.patch[-prerelease]`, and the constraints
//! `packages.yml` and `require-dbt-version` put on them (`1.1.0`, `>=1.0.0`, `<2.0.0`, a list
//! meaning all).

use std::cmp::Ordering;
use std::fmt;

/// The dbt version strata answers to: templates' `dbt_version`, and what each project's
/// `require-dbt-version` is checked against.
pub const DBT_VERSION: &str = "1.10.0";

/// [`DBT_VERSION`], parsed.
pub fn dbt_version() -> Version {
    Version::parse(DBT_VERSION).unwrap_or(Version {
        major: 1,
        minor: 10,
        patch: 0,
        prerelease: None,
    })
}

/// A version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    /// `1.0.0-b2` → `b2`.
    pub prerelease: Option<String>,
}

impl Version {
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.trim().trim_start_matches('v');
        let text = text.split('+').next().unwrap_or(text);
        let (core, prerelease) = match text.split_once('-') {
            Some((core, pre)) => (core, Some(pre.to_string())),
            None => (text, None),
        };
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(Version {
            major,
            minor,
            patch,
            prerelease,
        })
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (&self.prerelease, &other.prerelease) {
                (None, None) => Ordering::Equal,
                // A prerelease comes before its release.
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(a), Some(b)) => compare_prerelease(a, b),
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Dot-separated identifiers, numeric ones compared as numbers (semver's rule).
fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(pre) = &self.prerelease {
            write!(f, "-{pre}")?;
        }
        Ok(())
    }
}

/// One constraint: an operator and a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    pub op: Op,
    pub version: Version,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Constraint {
    pub fn parse(text: &str) -> Result<Constraint, String> {
        let text = text.trim();
        let (op, rest) = [
            (">=", Op::Ge),
            ("<=", Op::Le),
            (">", Op::Gt),
            ("<", Op::Lt),
            ("==", Op::Eq),
            ("=", Op::Eq),
        ]
        .into_iter()
        .find_map(|(prefix, op)| text.strip_prefix(prefix).map(|rest| (op, rest)))
        .unwrap_or((Op::Eq, text));
        let version = Version::parse(rest).ok_or_else(|| {
            format!("`{text}` is not a version (write `1.2.3`, or a range like `>=1.0.0`)")
        })?;
        Ok(Constraint { op, version })
    }

    pub fn allows(&self, v: &Version) -> bool {
        let order = v.cmp(&self.version);
        match self.op {
            Op::Eq => order == Ordering::Equal,
            Op::Lt => order == Ordering::Less,
            Op::Le => order != Ordering::Greater,
            Op::Gt => order == Ordering::Greater,
            Op::Ge => order != Ordering::Less,
        }
    }
}

/// The highest of `available` that every constraint allows; prereleases only when
/// `prerelease` is set or a constraint names one.
pub fn pick<'a>(
    available: impl IntoIterator<Item = &'a str>,
    constraints: &[Constraint],
    prerelease: bool,
) -> Option<Version> {
    let prerelease = prerelease || constraints.iter().any(|c| c.version.prerelease.is_some());
    available
        .into_iter()
        .filter_map(Version::parse)
        .filter(|v| prerelease || v.prerelease.is_none())
        .filter(|v| constraints.iter().all(|c| c.allows(v)))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn constraints(texts: &[&str]) -> Vec<Constraint> {
        texts
            .iter()
            .map(|t| Constraint::parse(t).unwrap())
            .collect()
    }

    #[test]
    fn the_highest_version_in_every_range_is_picked() {
        let available = ["0.9.0", "1.0.0", "1.1.1", "1.3.0-b1", "1.2.0", "2.0.0"];
        let picked = pick(available, &constraints(&[">=1.0.0", "<2.0.0"]), false);
        assert_eq!(picked.unwrap().to_string(), "1.2.0");
        let picked = pick(available, &constraints(&[">=1.0.0", "<2.0.0"]), true);
        assert_eq!(picked.unwrap().to_string(), "1.3.0-b1");
        let picked = pick(available, &constraints(&["1.1.1"]), false);
        assert_eq!(picked.unwrap().to_string(), "1.1.1");
        assert!(pick(available, &constraints(&[">=1.5.0", "<1.6.0"]), false).is_none());
    }

    #[test]
    fn versions_order_as_semver_does() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("1.0.0-b1") < v("1.0.0"));
        assert!(v("1.0.0-rc.2") < v("1.0.0-rc.10"));
        assert!(v("1.10.0") > v("1.9.9"));
        assert!(Constraint::parse("latest").is_err());
    }
}
