fn main() {
    std::process::exit(lockfolder_cli::main_from_args(std::env::args_os()));
}
