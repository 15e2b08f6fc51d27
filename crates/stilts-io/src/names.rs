//! Names from user files that become paths (experiment, phase, task and grid names, a task's
//! directory): they must stay inside the directory they are joined to. One check for every
//! such name, so that `name = "../../etc"` or an absolute path is refused where it is read,
//! with the key that holds it, instead of writing or reading outside the output directory.

/// Why `name` cannot be one path component (a file or directory name), or `Ok`.
///
/// Refused: empty, `.`, `..`, separators (`/`, `\`), NUL and other control characters, a
/// leading or trailing space, and more than 255 bytes.
///
/// ```
/// use stilts_io::names::check_component;
/// assert!(check_component("rte-1k").is_ok());
/// assert!(check_component("../x").is_err());
/// ```
pub fn check_component(name: &str) -> Result<(), String> {
    let why = if name.is_empty() {
        "it is empty"
    } else if name == "." || name == ".." {
        "it names the current or the parent directory"
    } else if name.contains(['/', '\\']) {
        "it holds a path separator"
    } else if name.chars().any(char::is_control) {
        "it holds a control character"
    } else if name.starts_with(' ') || name.ends_with(' ') {
        "it starts or ends with a space"
    } else if name.len() > 255 {
        "it is longer than 255 bytes"
    } else {
        return Ok(());
    };
    Err(format!(
        "`{}` cannot name a file or directory: {why}",
        name.escape_debug()
    ))
}

/// Why `path` cannot be a relative path inside a directory (`glue/SICK`), or `Ok`: it must not
/// be absolute, and each of its `/`-separated components passes [`check_component`].
pub fn check_relative(path: &str) -> Result<(), String> {
    if path.starts_with(['/', '\\'])
        || path.get(1..3) == Some(":\\")
        || path.get(1..3) == Some(":/")
    {
        return Err(format!("`{}` is an absolute path", path.escape_debug()));
    }
    for part in path.split('/') {
        check_component(part).map_err(|e| format!("in `{}`: {e}", path.escape_debug()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_leave_their_directory_are_refused() {
        for ok in ["RTE", "rte-1k", "MNLI→RTE", "a b", "x.toml"] {
            assert!(check_component(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", ".", "..", "a/b", "a\\b", "/etc", "a\0b", "tab\t", " lead", "trail ",
        ] {
            assert!(check_component(bad).is_err(), "{bad:?}");
        }
        assert!(check_component(&"x".repeat(256)).is_err());
        assert!(check_relative("glue/SICK").is_ok());
        for bad in [
            "/abs",
            "../up",
            "a/../b",
            "a//b",
            "C:\\x",
            "\\\\srv\\share",
            "a/\0",
        ] {
            assert!(check_relative(bad).is_err(), "{bad:?}");
        }
    }
}
