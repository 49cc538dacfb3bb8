#!/bin/sh
# The galnn(1) man page, made from the program's own help texts (so it never
# drifts from them): `galnn help` and `galnn help CMD` for every command.
set -e
G=${1:-bin/galnn}
esc() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }
cmds=$("$G" help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}' | grep -v -e '^help$' -e '^version$')
echo ".\\\" -*- coding: UTF-8 -*-"
echo ".TH GALNN 1 \"\" \"$("$G" version)\" \"galnn manual\""
echo ".SH NAME"
echo "galnn \\- train, evaluate and interpret deep models of galaxy properties"
echo ".SH SYNOPSIS"
echo ".B galnn"
echo "\\fICOMMAND\\fR [\\fIoptions\\fR]"
echo ".SH DESCRIPTION"
echo ".nf"
"$G" help | esc
echo ".fi"
for c in $cmds; do
    echo ".SH \"galnn $c\""
    echo ".nf"
    "$G" help "$c" | esc
    echo ".fi"
done
