//! The `junction` binary: see `junction::cli`.

fn main() -> std::process::ExitCode {
    junction::cli::main()
}
