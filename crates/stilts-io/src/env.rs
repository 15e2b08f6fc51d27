//! `${VAR}` expansion in the path strings of user files (experiments, grids), one
//! implementation for `stilts` and `cargo xtask`. `${VAR:-default}` falls back to `default`
//! when `VAR` is unset or empty, as in the shell
//! (`${STILTS_MINILM_DIR:-sentence-transformers/all-MiniLM-L6-v2}`: a local copy when there is
//! one, else the hub id).

/// Why a string cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpandError {
    /// `${VAR}` names a variable that is not set (or not Unicode).
    #[error("environment variable {0} is not set")]
    Unset(String),
    /// A `${` without its `}`.
    #[error("unterminated `${{`")]
    Unterminated,
}

/// Replaces every `${VAR}` in `value` with the variable's value, and every `${VAR:-default}`
/// with the value or, when unset or empty, `default`; other text is kept as it is.
pub fn expand_env(value: &str) -> Result<String, ExpandError> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or(ExpandError::Unterminated)?;
        let (var, default) = match after[..end].split_once(":-") {
            Some((var, default)) => (var, Some(default)),
            None => (&after[..end], None),
        };
        let value = std::env::var(var)
            .ok()
            .filter(|v| default.is_none() || !v.is_empty());
        match (value, default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(default)) => out.push_str(default),
            (None, None) => return Err(ExpandError::Unset(var.to_owned())),
        }
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
        assert_eq!(
            expand_env("${STILTS_SURELY_UNSET_VAR:-org/name}").unwrap(),
            "org/name"
        );
        assert_eq!(
            expand_env("${PATH:-org/name}/x").unwrap(),
            format!("{home}/x")
        );
    }
}
