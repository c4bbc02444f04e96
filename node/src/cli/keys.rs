//! `stele keys generate|show`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use consensus::SigningKey;
use ledger::Address;

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Generate a new ed25519 key file (mode 0600) and print its public key and address.
    Generate {
        /// Where to write the key file; it must not exist yet.
        #[arg(long, default_value = "key.json")]
        out: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the public key and address of a key file.
    Show {
        /// The key file.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Generate { out, json } => {
            let key = SigningKey::generate().context("generating a key")?;
            genesis::write_key(&out, &key)?;
            print_key(&key, Some(&out), json);
        }
        KeysCommand::Show { file, json } => {
            let key = genesis::load_key(&file)?;
            print_key(&key, Some(&file), json);
        }
    }
    Ok(())
}

fn print_key(key: &SigningKey, file: Option<&PathBuf>, json: bool) {
    let public_key = key.public_key();
    let address = Address::of(&public_key);
    if json {
        let value = serde_json::json!({
            "public_key": public_key.to_string(),
            "address": address.to_string(),
            "peer_id": genesis::peer_id_of(&public_key),
            "file": file.map(|path| path.display().to_string()),
        });
        println!("{value}");
    } else {
        if let Some(file) = file {
            println!("key file:   {}", file.display());
        }
        println!("public key: {public_key}");
        println!("address:    {address}");
    }
}
