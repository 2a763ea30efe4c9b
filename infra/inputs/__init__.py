"""What users hand the commands, checked before anything runs: command-line values
(`values`) and the files the commands read and write (`files`). Each refusal names the
option or file, the bad value, what is allowed and how to fix it."""
