#!/usr/bin/env bash
# Writes the named seed inputs under fuzz/corpus/<target>/: one per malformed-input case that
# has a reproducer test in src/proto, plus a few valid requests. The recorded transcripts in
# fixtures/proto/ are seeds too (the corpus test in src/lib.rs reads them directly; copy them in
# with `cp fixtures/proto/*/* fuzz/corpus/<target>/` before a long fuzzing run).
set -euo pipefail
cd "$(dirname "$0")"

A=d16c6584d637d92f6593daf297f86bfca55e1c3b
Z=0000000000000000000000000000000000000000
pkt() { printf '%04x%s' $((${#1} + 4)) "$1"; }
# A pkt-line whose payload contains a NUL: first part, NUL, second part.
pkt_nul() { printf '%04x%s\0%s' $((${#1} + ${#2} + 5)) "$1" "$2"; }

mkdir -p corpus/{pktline,receive_commands,upload_request,advertisement,report}

printf '0003' >corpus/pktline/length-three
printf '00g0' >corpus/pktline/bad-hex
printf 'fff1' >corpus/pktline/length-above-max
printf '0009don' >corpus/pktline/eof-inside-packet
printf '00040000000100020006a\n' >corpus/pktline/empty-and-special

{ pkt_nul "$Z $A refs/heads/a" "report-status"; pkt "$Z $A refs/heads/b"; printf 0000; } >corpus/receive_commands/valid-two-commands
{ pkt_nul "$Z $A refs/heads/a" "report-status"; pkt_nul "$Z $A refs/heads/b" "push-options"; printf 0000; } >corpus/receive_commands/caps-on-second-line
{ pkt_nul "$Z $A refs/heads/a" "report-status"; pkt "shallow $A"; printf 0000; } >corpus/receive_commands/shallow-after-command
{ pkt_nul "$Z $A refs/heads/a" "report-status"; pkt "$A $A refs/heads/a"; printf 0000; } >corpus/receive_commands/duplicate-ref
{ pkt_nul "$Z $A refs/heads/../x" "report-status"; printf 0000; } >corpus/receive_commands/bad-ref-name
{ pkt_nul "push-cert" "report-status"; pkt "certificate version 0.1"; } >corpus/receive_commands/push-cert
{ pkt_nul "$Z $A refs/heads/a" "push-options"; printf 0000; pkt "line
break"; printf 0000; } >corpus/receive_commands/push-option-with-lf

{ pkt "command=bundle-uri"; printf 0001; printf 0000; } >corpus/upload_request/bundle-uri
{ pkt "command=fetch"; printf 0001; pkt "want $A"; pkt "packfile-uris https"; pkt done; printf 0000; } >corpus/upload_request/packfile-uris
{ pkt "want $A"; } >corpus/upload_request/v0-want-without-flush
{ pkt "command=fetch"; printf 0001; pkt "deepen 0"; printf 0000; } >corpus/upload_request/deepen-zero

{ pkt "version 2"; pkt "fetch=shallow packfile-uris"; pkt "bundle-uri"; printf 0000; } >corpus/advertisement/v2-bypass-capabilities
{ pkt "# service=git-receive-pack"; pkt "version 2"; } >corpus/advertisement/service-header-without-flush
{ pkt "$A refs/heads/main"; printf 0000; } >corpus/advertisement/first-ref-without-capabilities
printf '0001' >corpus/advertisement/delim

printf '001a\003fatal: out of memory\n' >corpus/report/band-three
{ pkt "unpack ok"; pkt "option old-oid $A"; printf 0000; } >corpus/report/option-before-ok
