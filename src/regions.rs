//! The one list of AWS regions cove knows, by partition, and the checks that catch a mistyped
//! region before a long run starts. AWS adds regions over time: add them here, and until then
//! users pass `--allow-unknown-region`.

/// Known regions of each partition. Keep this the only list in the code base.
pub const PARTITIONS: &[(&str, &[&str])] = &[
    (
        "aws",
        &[
            "af-south-1",
            "ap-east-1",
            "ap-east-2",
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-northeast-3",
            "ap-south-1",
            "ap-south-2",
            "ap-southeast-1",
            "ap-southeast-2",
            "ap-southeast-3",
            "ap-southeast-4",
            "ap-southeast-5",
            "ap-southeast-6",
            "ap-southeast-7",
            "ca-central-1",
            "ca-west-1",
            "eu-central-1",
            "eu-central-2",
            "eu-north-1",
            "eu-south-1",
            "eu-south-2",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
            "il-central-1",
            "me-central-1",
            "me-south-1",
            "mx-central-1",
            "sa-east-1",
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
        ],
    ),
    ("aws-cn", &["cn-north-1", "cn-northwest-1"]),
    ("aws-us-gov", &["us-gov-east-1", "us-gov-west-1"]),
];

fn all_known() -> impl Iterator<Item = &'static str> {
    PARTITIONS
        .iter()
        .flat_map(|(_, regions)| regions.iter().copied())
}

/// The partition a known region belongs to.
pub fn partition_of(region: &str) -> Option<&'static str> {
    PARTITIONS
        .iter()
        .find(|(_, regions)| regions.contains(&region))
        .map(|(p, _)| *p)
}

/// Whether `region` has the shape of a region name: lowercase words joined by `-`, ending in a number.
fn well_formed(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

/// The known region closest to `region`, for a "did you mean" hint.
pub fn closest(region: &str) -> Option<&'static str> {
    let folded = region.trim().to_ascii_lowercase();
    all_known()
        .map(|known| (strsim::levenshtein(&folded, known), known))
        .filter(|(distance, _)| *distance <= 4)
        .min()
        .map(|(_, known)| known)
}

/// Checks one `--region` value. Unknown but well-formed names pass only with `allow_unknown`.
pub fn check(region: &str, allow_unknown: bool) -> Result<(), String> {
    let hint = || match closest(region) {
        Some(c) if c != region => format!("; did you mean `{c}`?"),
        _ => String::new(),
    };
    if !well_formed(region) {
        return Err(format!(
            "invalid region `{region}`: expected a lowercase region name such as `us-east-1`{}",
            hint()
        ));
    }
    if partition_of(region).is_none() && !allow_unknown {
        return Err(format!(
            "unknown region `{region}`{}  (if AWS has added this region since this cove was built, pass --allow-unknown-region)",
            hint()
        ));
    }
    Ok(())
}

/// Which regions a run covers, as the user chose them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionChoice {
    /// No `--region`: the region of the credential chain (AWS_REGION, the profile), or with
    /// `--rerun` the regions recorded in its file.
    Chain,
    /// `--region a,b`, de-duplicated, in the order given.
    Named(Vec<String>),
    /// `--region all`: every region each account has enabled, asked of the account.
    AllEnabled,
}

/// How `--region all` targets are labelled before their regions are known (the dry run, and the
/// record of an account whose regions could not be discovered).
pub const ALL_ENABLED_LABEL: &str = "all";

/// The run's regions: the choice, and the regions `--exclude-region` leaves out. Exclusion is
/// decided here and nowhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regions {
    pub choice: RegionChoice,
    exclude: Vec<String>,
}

impl Regions {
    pub fn new(choice: RegionChoice, exclude: Vec<String>) -> Self {
        Regions { choice, exclude }
    }

    /// Whether a region may run at all.
    pub fn allows(&self, region: &str) -> bool {
        !self.exclude.iter().any(|r| r == region)
    }

    /// The allowed regions of `regions`, in their order.
    pub fn keep(&self, regions: impl IntoIterator<Item = String>) -> Vec<String> {
        regions.into_iter().filter(|r| self.allows(r)).collect()
    }

    pub fn is_all_enabled(&self) -> bool {
        self.choice == RegionChoice::AllEnabled
    }

    /// Whether a region recorded in a `--rerun` file runs: named regions narrow the file's.
    pub fn reruns(&self, region: &str) -> bool {
        let named = match &self.choice {
            RegionChoice::Named(named) => named.iter().any(|r| r == region),
            _ => true,
        };
        named && self.allows(region)
    }

    /// The regions every account runs in, known before the run: the named ones, or the chain's
    /// region. Empty when they come from elsewhere (`--region all`, or `--rerun` without
    /// `--region`). An error names what is missing.
    pub fn fixed(&self, chain: Option<&str>, rerun: bool) -> Result<Vec<String>, String> {
        let fixed = match (&self.choice, chain) {
            (RegionChoice::AllEnabled, _) => return Ok(Vec::new()),
            (RegionChoice::Chain, _) if rerun => return Ok(Vec::new()),
            (RegionChoice::Named(named), _) => self.keep(named.iter().cloned()),
            (RegionChoice::Chain, Some(region)) => self.keep([region.to_owned()]),
            (RegionChoice::Chain, None) => {
                return Err("no region: pass --region (for example --region us-east-1), or set AWS_REGION or a region in your AWS profile".into());
            }
        };
        if fixed.is_empty() {
            return Err(
                "no eligible targets: --exclude-region leaves out every region to run in".into(),
            );
        }
        Ok(fixed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_gets_the_closest_known_region() {
        let err = check("eu-noth-1", false).unwrap_err();
        assert!(err.contains("`eu-noth-1`"), "{err}");
        assert!(err.contains("did you mean `eu-north-1`"), "{err}");
    }

    #[test]
    fn case_and_white_space_are_rejected_with_a_hint() {
        let err = check("US-EAST-1", false).unwrap_err();
        assert!(err.contains("did you mean `us-east-1`"), "{err}");
        let err = check("us-east-1 ", false).unwrap_err();
        assert!(err.contains("`us-east-1 `"), "{err}");
    }

    #[test]
    fn unknown_well_formed_region_needs_the_flag() {
        assert!(check("xx-future-9", false).is_err());
        assert!(check("xx-future-9", true).is_ok());
        assert!(check("not a region", true).is_err());
    }

    #[test]
    fn partition_follows_the_region() {
        assert_eq!(partition_of("cn-north-1"), Some("aws-cn"));
        assert_eq!(partition_of("us-gov-west-1"), Some("aws-us-gov"));
        assert_eq!(partition_of("eu-west-1"), Some("aws"));
    }

    #[test]
    fn exclusion_applies_to_named_chain_and_discovered_regions() {
        let named = Regions::new(
            RegionChoice::Named(vec!["us-east-1".into(), "eu-west-1".into()]),
            vec!["eu-west-1".into()],
        );
        assert_eq!(named.fixed(None, false).unwrap(), ["us-east-1"]);
        assert!(!named.reruns("eu-west-1") && named.reruns("us-east-1"));
        assert!(!named.reruns("ap-south-1"), "named regions narrow a rerun");
        let chain = Regions::new(RegionChoice::Chain, vec!["eu-west-1".into()]);
        assert!(chain.fixed(Some("eu-west-1"), false).is_err());
        assert!(chain.fixed(None, false).unwrap_err().contains("no region"));
        assert!(chain.fixed(None, true).unwrap().is_empty());
        let all = Regions::new(RegionChoice::AllEnabled, vec!["ap-east-1".into()]);
        assert_eq!(
            all.keep(["ap-east-1".to_owned(), "us-east-1".to_owned()]),
            ["us-east-1"]
        );
    }
}
