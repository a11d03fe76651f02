#!/bin/sh
# scripts/sql2c.sh NAME FILE - print FILE as a C string constant `const char NAME[]`.
# Used by the Makefile to embed data/schema.sql and data/roles.sql in the binary, so that
# the .sql files stay the one source of truth.
set -eu
printf '/* generated from %s by scripts/sql2c.sh - do not edit */\nconst char %s[] =\n' "$2" "$1"
awk '{ gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); printf "    \"%s\\n\"\n", $0 }' "$2"
printf '    "";\n'
