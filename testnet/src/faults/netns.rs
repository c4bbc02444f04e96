//! Validators on hosts of their own: one Linux network namespace per node, joined to a private
//! bridge by a veth pair, so a partition is a real packet filter between real addresses (the
//! process and its sockets cannot tell it from a cut cable). Needs root and `ip`/`iptables`.
//!
//! Node `i` is `10.H.L.(10 + i)` on the bridge's `/24` (H.L from the base port, as for compose);
//! the bridge itself is `.1`, so the runner (in the root namespace) always reaches every node's
//! JSON-RPC, even one cut off from its peers.

use std::process::{Command, Stdio};

use crate::{Error, Subnet};

/// The namespaces of one network; removed (with every link and filter) when dropped.
pub struct Namespaces {
    tag: String,
    subnet: Subnet,
    count: usize,
}

/// Why namespaces cannot be used here, if they cannot (not root, no `ip`, no `iptables`).
pub fn unavailable() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("network namespaces need root".into());
    }
    for tool in ["ip", "iptables"] {
        let found = Command::new(tool).arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status();
        if !found.is_ok_and(|status| status.success()) {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    None
}

fn run(program: &str, arguments: &[&str]) -> Result<(), Error> {
    let output = Command::new(program)
        .args(arguments)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Io { path: program.into(), source })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::Launch(format!(
            "`{program} {}` failed: {}",
            arguments.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

impl Namespaces {
    /// Creates `count` namespaces and the bridge for a network whose base port is `base_port`,
    /// first removing any left behind by an earlier run that was killed.
    pub fn create(base_port: u16, count: usize) -> Result<Self, Error> {
        let namespaces =
            Namespaces { tag: format!("{base_port:04x}"), subnet: Subnet::for_base_port(base_port), count };
        namespaces.remove();
        let bridge = namespaces.bridge();
        let gateway = format!("{}/24", namespaces.subnet.gateway());
        run("ip", &["link", "add", &bridge, "type", "bridge"])?;
        run("ip", &["addr", "add", &gateway, "dev", &bridge])?;
        run("ip", &["link", "set", &bridge, "up"])?;
        // Where br_netfilter is loaded (Docker loads it and sets FORWARD to DROP), bridged
        // traffic between the namespaces goes through the host's FORWARD chain.
        run("iptables", &["-I", "FORWARD", "-i", &bridge, "-o", &bridge, "-j", "ACCEPT"])?;
        for index in 0..count {
            let name = namespaces.name(index);
            let veth = namespaces.veth(index);
            let address = format!("{}/24", namespaces.address(index));
            run("ip", &["netns", "add", &name])?;
            run("ip", &["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &name])?;
            run("ip", &["link", "set", &veth, "master", &bridge, "up"])?;
            run("ip", &["-n", &name, "addr", "add", &address, "dev", "eth0"])?;
            run("ip", &["-n", &name, "link", "set", "eth0", "up"])?;
            run("ip", &["-n", &name, "link", "set", "lo", "up"])?;
        }
        Ok(namespaces)
    }

    /// Namespace of node `index`.
    pub fn name(&self, index: usize) -> String {
        format!("st{}-{index}", self.tag)
    }

    fn veth(&self, index: usize) -> String {
        format!("vst{}-{index}", self.tag)
    }

    fn bridge(&self) -> String {
        format!("stbr{}", self.tag)
    }

    /// Node `index`'s address.
    pub fn address(&self, index: usize) -> String {
        self.subnet.address(index)
    }

    /// `ip netns exec <namespace of index> program`: the program (same PID, `ip` execs it) runs
    /// on that host.
    pub fn command(&self, index: usize, program: &std::path::Path) -> Command {
        let mut command = Command::new("ip");
        command.arg("netns").arg("exec").arg(self.name(index)).arg(program);
        command
    }

    /// Cuts the network into `groups`: every node drops packets to and from each node outside
    /// its group (both ways, so TCP connections stall as on a real partition). Nodes in no group
    /// are cut off from everyone. Replaces any earlier partition.
    pub fn partition(&self, groups: &[Vec<usize>]) -> Result<(), Error> {
        self.heal()?;
        let group_of = |node: usize| groups.iter().position(|group| group.contains(&node));
        for node in 0..self.count {
            let name = self.name(node);
            for other in (0..self.count).filter(|&other| other != node) {
                if group_of(node).is_some() && group_of(node) == group_of(other) {
                    continue;
                }
                let address = self.address(other);
                run("ip", &["netns", "exec", &name, "iptables", "-A", "INPUT", "-s", &address, "-j", "DROP"])?;
                run("ip", &["netns", "exec", &name, "iptables", "-A", "OUTPUT", "-d", &address, "-j", "DROP"])?;
            }
        }
        Ok(())
    }

    /// Removes every partition.
    pub fn heal(&self) -> Result<(), Error> {
        for node in 0..self.count {
            let name = self.name(node);
            run("ip", &["netns", "exec", &name, "iptables", "-F", "INPUT"])?;
            run("ip", &["netns", "exec", &name, "iptables", "-F", "OUTPUT"])?;
        }
        Ok(())
    }

    /// Best effort: deleting a namespace deletes its end of the veth pair, and so the pair.
    fn remove(&self) {
        let quiet = |arguments: &[&str]| {
            let _ =
                Command::new(arguments[0]).args(&arguments[1..]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        };
        let bridge = self.bridge();
        for index in 0..self.count {
            quiet(&["ip", "netns", "del", &self.name(index)]);
            quiet(&["ip", "link", "del", &self.veth(index)]);
        }
        quiet(&["iptables", "-D", "FORWARD", "-i", &bridge, "-o", &bridge, "-j", "ACCEPT"]);
        quiet(&["ip", "link", "del", &bridge]);
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        self.remove();
    }
}
