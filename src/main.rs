fn main() -> std::process::ExitCode {
    tessera_cli::main()
}
