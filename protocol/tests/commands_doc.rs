//! docs/COMMANDS.md is generated from the command table; this test keeps the two equal.
//! After changing the table, run with `TESSERA_BLESS=1` to rewrite the file.

use std::fmt::Write;
use std::path::Path;

use tessera_protocol::{ErrorCode, KeySpec, COMMANDS};

fn render() -> String {
    let mut out = String::from(
        "# Commands\n\n\
         Generated from the command table (`protocol/src/commands/`, one module per\n\
         family) by `protocol/tests/commands_doc.rs`; edit the table, then run\n\
         `TESSERA_BLESS=1 cargo test -p tessera-protocol --test commands_doc`.\n\
         Wire layouts use the notation of [PROTOCOL.md](PROTOCOL.md).\n\n\
         | command | arguments | runs on | reply |\n|---|---|---|---|\n",
    );
    for spec in COMMANDS {
        let runs_on = match spec.keys {
            KeySpec::None => "the receiving shard",
            KeySpec::Single => "the key's owner",
            KeySpec::OneSlot => "the owner of the keys' one slot",
            KeySpec::Many | KeySpec::Pairs => "each key's owner, gathered",
            KeySpec::AllShards => "every shard, gathered",
            KeySpec::Watch => "each user's owner, for this connection",
            KeySpec::Area => "the partitions around the position, gathered",
        };
        let syntax = if spec.syntax.is_empty() {
            "(none)".to_string()
        } else {
            format!("`{}`", spec.syntax.replace('|', "\\|"))
        };
        let reply = spec.reply.replace('|', "\\|");
        let _ = writeln!(
            out,
            "| [{}](#{}) | {syntax} | {runs_on} | {reply} |",
            spec.name,
            spec.name.to_lowercase()
        );
    }
    for spec in COMMANDS {
        let _ = write!(
            out,
            "\n## {}\n\n{}\n\n- Syntax: `{} {}`\n- Opcode: `0x{:04x}`\n- Body: `{}`\n- Reply: {}\n",
            spec.name, spec.summary, spec.name, spec.syntax, spec.opcode, spec.wire, spec.reply
        );
    }
    out.push_str("\n## Error codes\n\n| code | name |\n|---|---|\n");
    for code in ErrorCode::ALL {
        let _ = writeln!(out, "| {} | {} |", code as u16, code.name());
    }
    out
}

#[test]
fn commands_doc_matches_the_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/COMMANDS.md");
    let expected = render();
    if std::env::var_os("TESSERA_BLESS").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/COMMANDS.md is stale; rerun with TESSERA_BLESS=1"
    );
}
