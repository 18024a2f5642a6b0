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
}
