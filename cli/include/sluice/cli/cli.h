// The `sluice` command line: RunCli parses argv, runs one command and returns its exit status.
//
// Exit status (as ripgrep's man page puts it): 0 success; 1 the run failed (a fatal error, or a
// verification found problems, or the bad-sample budget was exceeded); 2 usage error (bad flags).
// Data goes to stdout; progress, logs and the summary line to stderr.
#ifndef SLUICE_CLI_CLI_H_
#define SLUICE_CLI_CLI_H_

namespace sluice::cli {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

int RunCli(int argc, char** argv);

}  // namespace sluice::cli

#endif  // SLUICE_CLI_CLI_H_
