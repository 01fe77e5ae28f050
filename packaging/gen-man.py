#!/usr/bin/python3
"""Writes loom(1) from the command's own help: `loom --help` for the
synopsis and the command list, then each command's `--help` as its section,
verbatim. Usage: gen-man.py LOOM_BINARY OUTPUT.1

The text is the help itself (so the page cannot drift from the binary);
only roff's special characters are escaped."""
import re
import subprocess
import sys
import time

COMMANDS = ["serve", "fetch", "status", "plugins", "check-config", "install-plugin",
            "new-plugin", "check-plugin"]


def run(loom, *args):
    p = subprocess.run([loom] + list(args), capture_output=True, text=True, timeout=30)
    return (p.stdout or p.stderr).rstrip("\n")


def esc(line):
    """One line of text, safe for roff: backslashes, minus signs, and a
    leading dot or quote."""
    line = line.replace("\\", "\\e").replace("-", "\\-")
    if line.startswith((".", "'")):
        line = "\\&" + line
    return line


def verbatim(text):
    out = [".nf"]
    for ln in text.split("\n"):
        out.append(esc(ln) if ln.strip() else ".sp")
    out.append(".fi")
    return out


def main():
    loom, dest = sys.argv[1], sys.argv[2]
    version = run(loom, "version").split()[1]
    top = run(loom, "--help")
    # `loom --help`: "usage: ..." then "commands:" with one line each.
    commands = []
    for ln in top.split("\n"):
        m = re.match(r"  (\S+)( .*?)?\s{2,}(\S.*)$", ln)
        if m:
            commands.append((m.group(1), (m.group(2) or "").strip(), m.group(3)))
    date = time.strftime("%Y-%m-%d", time.gmtime(int(sys.argv[3]) if len(sys.argv) > 3 else 0))
    out = [
        '.TH LOOM 1 "%s" "loom %s" "User Commands"' % (date, version),
        ".SH NAME",
        "loom \\- asynchronous HTTP server with hot\\-reloadable C plugins, and HTTP client",
        ".SH SYNOPSIS",
    ]
    for name, args, _ in commands:
        if name in ("serve", "fetch", "status", "plugins", "check-config", "install-plugin",
                    "new-plugin", "check-plugin", "version"):
            out += [".B loom %s" % esc(name)]
            if args:
                out += [".I %s" % esc(args)]
            out += [".br"]
    out += [
        ".SH DESCRIPTION",
        "loom serves HTTP/1.1 (and HTTP/2 and TLS where configured) with handler plugins",
        "(shared objects) loaded from a plugins directory through a stable C ABI. A plugin",
        "may be replaced while the server runs. A master process supervises one worker per",
        "CPU. The same binary is an HTTP client",
        "(\\fBloom fetch\\fR), the plugin SDK's tools (\\fBloom new\\-plugin\\fR,",
        "\\fBloom check\\-plugin\\fR, \\fBloom install\\-plugin\\fR), and the operator's view of a",
        "running server (\\fBloom status\\fR, \\fBloom plugins\\fR).",
        ".SH COMMANDS",
    ]
    for name, args, what in commands:
        out += [".TP", ".B %s" % esc(name), esc(what)]
    for name in COMMANDS:
        out += [".SH \"LOOM %s\"" % esc(name.upper())]
        out += verbatim(run(loom, name, "--help"))
    out += [
        ".SH SIGNALS",
        ".TP", ".B SIGTERM, SIGINT",
        "Graceful stop: no new connections, requests in flight finish within",
        "shutdown_timeout. A second SIGINT stops at once.",
        ".TP", ".B SIGHUP",
        "Rescan the plugins directory, reload TLS certificates, and read log_level again from",
        "the config file.",
        ".TP", ".B SIGUSR1",
        "Reopen the access log and the error log files (after a rotation).",
        ".SH FILES",
        ".TP", ".I /etc/loom/loom.json",
        "The server configuration of the packaged service.",
        ".TP", ".I /usr/lib/loom/plugins",
        "The plugins shipped with loom.",
        ".TP", ".I /lib/systemd/system/loom.service, loom.socket",
        "The systemd units (Type=notify; optional socket activation).",
        ".SH EXIT STATUS",
        "0 on success; 1 when a command fails (a server that cannot start, an unreachable",
        "admin endpoint, a config with problems); 2 for a usage error.",
        ".SH SEE ALSO",
        "The README and the SDK's ABI.md, in /usr/share/doc/loom.",
    ]
    with open(dest, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
