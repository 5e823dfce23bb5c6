#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gitgate_fuzz::ssh_exec(data));
