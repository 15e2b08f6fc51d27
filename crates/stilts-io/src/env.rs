//! `${VAR}` expansion in the path strings of user files (experiments, grids), one
//! implementation for `stilts` and `cargo xtask`.

/// Why a string cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// `${VAR}` names a variable that is not set (or not Unicode).
    #[error("environment variable {0} is not set")]
    Unset(String),
    /// A `${` without its `}`.
    #[error("unterminated `${{`")]
    Unterminated,
}

/// Replaces every `${VAR}` in `value` with the variable's value; other text is kept as it is.
pub fn expand_env(value: &str) -> Result<String, ExpandError> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or(ExpandError::Unterminated)?;
        let var = &after[..end];
        out.push_str(&std::env::var(var).map_err(|_| ExpandError::Unset(var.to_owned()))?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_set_variables_and_names_the_unset_one() {
        let home = std::env::var("PATH").unwrap();
        assert_eq!(
            expand_env("a/${PATH}/b${PATH}").unwrap(),
            format!("a/{home}/b{home}")
        );
        assert_eq!(expand_env("plain/$HOME/x").unwrap(), "plain/$HOME/x");
        assert_eq!(
            expand_env("${STILTS_SURELY_UNSET_VAR}/x"),
            Err(ExpandError::Unset("STILTS_SURELY_UNSET_VAR".into()))
        );
        assert_eq!(expand_env("a/${PATH"), Err(ExpandError::Unterminated));
    }
}
