/*
 * xensim: the command-line front end of a xensim instance (see docs/xensim.md).
 *
 *   xensim up | down | domain create NAME | domain destroy N|NAME | domain list
 *   xensim run --domid N -- CMD...
 *
 * An instance is a directory D ($XENSIM_DIR, else /tmp/xensim-$UID, or --dir D). `up`
 * starts xensimd and, when it sits next to this binary, xensim-hvd, each in its own session
 * with its log in D. Everything else talks to xensimd over D/control.sock (one request line,
 * one reply; see xensimd.c). `run` execs the command in place, in its own process group,
 * recorded under D so that destroying the domain kills it (xs-procs.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xs-procs.h"

#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS  5000

typedef struct Cli {
        char dir[4096];
        char exe_dir[PATH_MAX];
        bool help;
        const char *domid_arg;
        const char *pos[4];
        int n_pos;
        char **cmd; /* after "--" */
} Cli;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        fputs("xensim: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        exit(1);
}

/* snprintf for paths and environment values: one that does not fit is fatal, never truncated. */
static void fmt_or_die(char *buf, size_t size, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void fmt_or_die(char *buf, size_t size, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, size, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= size)
                die("too long (at most %zu bytes): %.64s...", size - 1, buf);
}

static void sleep_ms(unsigned ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

        nanosleep(&ts, NULL);
}

static bool file_exists(const char *path)
{
        struct stat st;

        return stat(path, &st) == 0;
}

/* ---- control channel ---- */

static int ctl_connect(const Cli *cli)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;

        if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", cli->dir) >=
            sizeof(sa.sun_path))
                die("instance directory path too long: %s", cli->dir);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int e = -errno;

                close(fd);
                return e;
        }
        return fd;
}

/* Sends one request; returns the reply (malloc'd) or NULL if no instance answers. */
static char *ctl_request(const Cli *cli, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static char *ctl_request(const Cli *cli, const char *fmt, ...)
{
        char line[512], *buf = NULL;
        size_t n = 0, cap = 0;
        va_list ap;
        int fd = ctl_connect(cli), len;

        if (fd < 0)
                return NULL;
        va_start(ap, fmt);
        len = vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        if (len < 0 || (size_t)len >= sizeof(line) ||
            send(fd, line, (size_t)len, MSG_NOSIGNAL) != len) {
                close(fd);
                return NULL;
        }
        for (;;) {
                ssize_t r;

                if (n + 512 > cap) {
                        char *nb = realloc(buf, cap + 4096);

                        if (!nb)
                                die("out of memory");
                        buf = nb;
                        cap += 4096;
                }
                r = recv(fd, buf + n, cap - n - 1, 0);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                n += (size_t)r;
        }
        close(fd);
        if (!buf || n == 0) {
                free(buf);
                return NULL;
        }
        buf[n] = 0;
        return buf;
}

static char *ctl_must(const Cli *cli, const char *cmd, const char *arg)
{
        char *reply = arg ? ctl_request(cli, "%s %s\n", cmd, arg) : ctl_request(cli, "%s\n", cmd);

        if (!reply)
                die("no xensim instance running in %s (start one with 'xensim up')", cli->dir);
        if (strncmp(reply, "error ", 6) == 0) {
                reply[strcspn(reply, "\n")] = 0;
                die("%s", reply + 6);
        }
        return reply;
}

static bool xensimd_alive(const Cli *cli)
{
        char *r = ctl_request(cli, "ping\n");
        bool ok = r && strncmp(r, "ok", 2) == 0;

        free(r);
        return ok;
}

/* ---- pid files ---- */

/* The pid in a pid file's text ("1234\n"), or 0 if it holds none. */
static pid_t parse_pid(const char *s)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || (*end && *end != '\n') || v <= 0 || v > INT_MAX)
                return 0;
        return (pid_t)v;
}

static pid_t read_pid(const Cli *cli, const char *name)
{
        char path[4200], buf[32];
        ssize_t n;
        int fd;

        fmt_or_die(path, sizeof(path), "%s/%s", cli->dir, name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return 0;
        buf[n] = 0;
        return parse_pid(buf);
}

static void write_pid(const Cli *cli, const char *name, pid_t pid)
{
        char path[4200];
        FILE *f;

        fmt_or_die(path, sizeof(path), "%s/%s", cli->dir, name);
        f = fopen(path, "w");
        if (!f)
                die("cannot write %s: %s", path, strerror(errno));
        fprintf(f, "%d\n", (int)pid);
        /* The stream's error is sticky: fclose() reports a failed fprintf() too. */
        if (fclose(f) != 0)
                die("cannot write %s: %s", path, strerror(errno));
}

static void remove_file(const Cli *cli, const char *name)
{
        char path[4200];

        fmt_or_die(path, sizeof(path), "%s/%s", cli->dir, name);
        unlink(path);
}

static bool hvd_running(const Cli *cli)
{
        pid_t pid = read_pid(cli, "hvd.pid");

        return pid > 0 && kill(pid, 0) == 0;
}

/* ---- up / down ---- */

static pid_t spawn_daemon(const Cli *cli, const char *prog, const char *log)
{
        char exe[PATH_MAX + 32], logpath[4200], sock[4200];
        pid_t pid;

        fmt_or_die(exe, sizeof(exe), "%s/%s", cli->exe_dir, prog);
        fmt_or_die(logpath, sizeof(logpath), "%s/%s", cli->dir, log);
        fmt_or_die(sock, sizeof(sock), "%s/dom0.sock", cli->dir);
        pid = fork();
        if (pid < 0)
                die("fork: %s", strerror(errno));
        if (pid == 0) {
                int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
                int out = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

                setsid();
                if (in >= 0)
                        dup2(in, 0);
                if (out >= 0) {
                        dup2(out, 1);
                        dup2(out, 2);
                }
                setenv("XENSIM_DIR", cli->dir, 1);
                setenv("XENSTORED_PATH", sock, 1);
                execl(exe, prog, "--dir", cli->dir, (char *)NULL);
                fprintf(stderr, "xensim: cannot run %s: %s\n", exe, strerror(errno));
                _exit(127);
        }
        return pid;
}

/* Waits for ready() while the child lives. Returns true when ready. */
static bool wait_ready(const Cli *cli, pid_t child, bool (*ready)(const Cli *))
{
        for (int ms = 0; ms < START_TIMEOUT_MS; ms += 20) {
                int status;

                if (ready(cli))
                        return true;
                if (waitpid(child, &status, WNOHANG) == child)
                        return false;
                sleep_ms(20);
        }
        return ready(cli);
}

static bool hvd_ready(const Cli *cli)
{
        char path[4200];

        fmt_or_die(path, sizeof(path), "%s/hvd.ready", cli->dir);
        return file_exists(path);
}

static void wait_gone(pid_t pid, int timeout_ms)
{
        for (int ms = 0; ms < timeout_ms; ms += 20) {
                if (kill(pid, 0) < 0 && errno == ESRCH)
                        return;
                waitpid(pid, NULL, WNOHANG);
                sleep_ms(20);
        }
        kill(pid, SIGKILL);
}

static void stop_hvd(const Cli *cli)
{
        pid_t pid = read_pid(cli, "hvd.pid");

        if (pid > 0 && kill(pid, SIGTERM) == 0)
                wait_gone(pid, STOP_TIMEOUT_MS);
        remove_file(cli, "hvd.pid");
        remove_file(cli, "hvd.ready");
}

static int cmd_up(const Cli *cli)
{
        char hvd[PATH_MAX + 32];
        pid_t pid;

        if (mkdir(cli->dir, 0700) < 0 && errno != EEXIST)
                die("cannot create %s: %s", cli->dir, strerror(errno));
        if (xensimd_alive(cli))
                die("an instance is already running in %s", cli->dir);
        pid = spawn_daemon(cli, "xensimd", "xensimd.log");
        if (!wait_ready(cli, pid, xensimd_alive))
                die("xensimd did not start; see %s/xensimd.log", cli->dir);
        fmt_or_die(hvd, sizeof(hvd), "%s/xensim-hvd", cli->exe_dir);
        if (access(hvd, X_OK) == 0) {
                remove_file(cli, "hvd.ready");
                pid = spawn_daemon(cli, "xensim-hvd", "hvd.log");
                write_pid(cli, "hvd.pid", pid);
                if (!wait_ready(cli, pid, hvd_ready)) {
                        stop_hvd(cli);
                        free(ctl_request(cli, "shutdown\n"));
                        die("xensim-hvd did not become ready; see %s/hvd.log", cli->dir);
                }
        } else {
                printf("xensim: xensim-hvd is absent (no grant tables or event channels)\n");
        }
        printf("xensim: up in %s\n", cli->dir);
        return 0;
}

static int cmd_down(const Cli *cli)
{
        pid_t pid = read_pid(cli, "xensimd.pid");
        bool hvd = hvd_running(cli);
        char *r = ctl_request(cli, "shutdown\n");

        if (!r && !hvd)
                die("no xensim instance running in %s", cli->dir);
        free(r);
        if (r && pid > 0)
                wait_gone(pid, STOP_TIMEOUT_MS);
        stop_hvd(cli);
        return 0;
}

/* ---- domains ---- */

static bool domid_sock_exists(const Cli *cli, const char *suffix, unsigned long domid)
{
        char path[4200];

        fmt_or_die(path, sizeof(path), "%s/dom%lu%s", cli->dir, domid, suffix);
        return file_exists(path);
}

static int cmd_create(const Cli *cli)
{
        char *reply = ctl_must(cli, "create", cli->pos[0]);
        unsigned long domid = strtoul(reply + 3, NULL, 10);
        bool hvd = hvd_running(cli);
        int ms;

        free(reply);
        for (ms = 0; ms < START_TIMEOUT_MS; ms += 10) {
                if (domid_sock_exists(cli, ".sock", domid) &&
                    (!hvd || domid_sock_exists(cli, ".hv.sock", domid)))
                        break;
                sleep_ms(10);
        }
        if (ms >= START_TIMEOUT_MS)
                die("domain %lu created but its sockets did not appear", domid);
        printf("%lu\n", domid);
        return 0;
}

static int cmd_destroy(const Cli *cli)
{
        free(ctl_must(cli, "destroy", cli->pos[0]));
        return 0;
}

static int cmd_list(const Cli *cli)
{
        char *reply = ctl_must(cli, "list", NULL);

        fputs(reply + 3, stdout);
        free(reply);
        return 0;
}

/* Resolves a domain given by id or name to its id through the running instance. */
static unsigned long resolve_domain(const Cli *cli, const char *arg)
{
        char *reply = ctl_must(cli, "list", NULL), *line, *save = NULL;
        unsigned long found = ULONG_MAX;

        for (line = strtok_r(reply + 3, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *sp = strchr(line, ' ');

                if (!sp)
                        continue;
                *sp = 0;
                if (strcmp(line, arg) == 0 || strcmp(sp + 1, arg) == 0) {
                        found = strtoul(line, NULL, 10);
                        break;
                }
        }
        free(reply);
        if (found == ULONG_MAX)
                die("unknown domain '%s' in %s", arg, cli->dir);
        return found;
}

static int cmd_run(const Cli *cli)
{
        char val[4400], rec[4200];
        const char *old;
        unsigned long domid;
        pid_t pgid;
        int r;

        if (!cli->domid_arg)
                die("run: --domid N is required (see xensim run --help)");
        if (!cli->cmd || !cli->cmd[0])
                die("run: no command given after '--' (see xensim run --help)");
        domid = resolve_domain(cli, cli->domid_arg);
        fmt_or_die(val, sizeof(val), "%s/dom%lu.sock", cli->dir, domid);
        setenv("XENSTORED_PATH", val, 1);
        fmt_or_die(val, sizeof(val), "%s/dom%lu.hv.sock", cli->dir, domid);
        setenv("XENSIM_HV_SOCKET", val, 1);
        fmt_or_die(val, sizeof(val), "%lu", domid);
        setenv("XENSIM_DOMID", val, 1);
        setenv("XENSIM_DIR", cli->dir, 1);
        /* A guest shares this machine's file system, so dom0's broker socket is visible to it;
         * libvbus would take it and be stamped local instead of domN. A guest's processes reach
         * the broker over their domain's vchan, as on Xen, unless told otherwise. */
        old = getenv("VBUS_URL");
        if (domid != 0 && (!old || !*old))
                setenv("VBUS_URL", "vchan:0", 1);
        old = getenv("LD_LIBRARY_PATH");
        if (old && *old)
                fmt_or_die(val, sizeof(val), "%s/lib:%s", cli->exe_dir, old);
        else
                fmt_or_die(val, sizeof(val), "%s/lib", cli->exe_dir);
        setenv("LD_LIBRARY_PATH", val, 1);
        /* setsid() fails only for a group leader, which already has a group of its own. */
        setsid();
        pgid = getpgrp();
        r = xs_procs_record(cli->dir, (uint32_t)domid, pgid);
        if (r < 0)
                die("cannot record the process group in %s: %s", cli->dir, strerror(-r));
        execvp(cli->cmd[0], cli->cmd);
        r = errno;
        if (xs_procs_dir(cli->dir, (uint32_t)domid, rec, sizeof(rec)) == 0) {
                fmt_or_die(val, sizeof(val), "%s/%d", rec, (int)pgid);
                unlink(val);
        }
        fprintf(stderr, "xensim: cannot run %s: %s\n", cli->cmd[0], strerror(r));
        return 127;
}

/* ---- argument parsing ---- */

static const char *const help_main =
        "Usage: xensim [--dir D] COMMAND ...\n"
        "\n"
        "A Xen host without a hypervisor: a xenstore server (xensimd) and, when built, the\n"
        "grant-table and event-channel emulation (xensim-hvd), for Xen's userspace tools.\n"
        "\n"
        "Commands:\n"
        "  up                       start an instance (xensimd, then xensim-hvd if present)\n"
        "  down                     stop the instance and kill every domain's processes\n"
        "  domain create NAME       create a domain, print its id\n"
        "  domain destroy N|NAME    kill the domain's processes and remove it\n"
        "  domain list              print 'DOMID NAME' for every domain\n"
        "  run --domid N -- CMD...  run CMD as a process of domain N\n"
        "\n"
        "The instance directory D is --dir D, else $XENSIM_DIR, else /tmp/xensim-$UID.\n"
        "Each command has --help.\n";

static const char *const help_up =
        "Usage: xensim up [--dir D]\n"
        "\n"
        "Starts xensimd (domain 0 exists from the start) and, if xensim-hvd sits next to\n"
        "the xensim binary, xensim-hvd; returns once both are ready. Logs go to\n"
        "D/xensimd.log and D/hvd.log. Fails if an instance already runs in D.\n";

static const char *const help_down =
        "Usage: xensim down [--dir D]\n"
        "\n"
        "Stops the instance in D: kills the processes of every domain (those started with\n"
        "'xensim run'), removes the sockets and stops xensimd and xensim-hvd.\n";

static const char *const help_domain =
        "Usage: xensim domain create NAME [--dir D]\n"
        "       xensim domain destroy N|NAME [--dir D]\n"
        "       xensim domain list [--dir D]\n"
        "\n"
        "create   allocates the next domain id (from 1 up), writes /local/domain/<N>/{domid,\n"
        "         name,data}, fires @introduceDomain, prints N once D/dom<N>.sock (and\n"
        "         D/dom<N>.hv.sock when xensim-hvd runs) exist. NAME: 1-64 of A-Za-z0-9_.-\n"
        "destroy  SIGKILLs every process of the domain, removes its nodes, watches and\n"
        "         socket, and fires @releaseDomain.\n"
        "list     prints 'DOMID NAME' per line, domain 0 first.\n";

static const char *const help_run =
        "Usage: xensim run [--dir D] --domid N|NAME -- CMD [ARG...]\n"
        "\n"
        "Execs CMD as a process of domain N, in its own process group, recorded so that\n"
        "'xensim domain destroy' kills it. Sets XENSTORED_PATH=D/dom<N>.sock,\n"
        "XENSIM_HV_SOCKET=D/dom<N>.hv.sock, XENSIM_DOMID=N, XENSIM_DIR=D and prepends the\n"
        "xensim lib directory to LD_LIBRARY_PATH, so Xen's libraries and tools act as\n"
        "domain N. For N != 0 it also sets VBUS_URL=vchan:0 unless VBUS_URL is set: a\n"
        "guest shares this machine's files, and must not take dom0's broker socket for its\n"
        "own. Exits with CMD's status (127 if it cannot be run).\n";

static void parse(Cli *cli, int argc, char **argv, int start)
{
        for (int i = start; i < argc; i++) {
                const char *a = argv[i];

                if (strcmp(a, "--") == 0) {
                        cli->cmd = argv + i + 1;
                        return;
                } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                        cli->help = true;
                } else if (strcmp(a, "--dir") == 0) {
                        if (++i >= argc)
                                die("--dir needs a directory");
                        fmt_or_die(cli->dir, sizeof(cli->dir), "%s", argv[i]);
                } else if (strncmp(a, "--dir=", 6) == 0) {
                        fmt_or_die(cli->dir, sizeof(cli->dir), "%s", a + 6);
                } else if (strcmp(a, "--domid") == 0) {
                        if (++i >= argc)
                                die("--domid needs a domain");
                        cli->domid_arg = argv[i];
                } else if (strncmp(a, "--domid=", 8) == 0) {
                        cli->domid_arg = a + 8;
                } else if (a[0] == '-' && a[1] != 0) {
                        die("unknown option '%s' (see xensim --help)", a);
                } else {
                        if (cli->n_pos >= 4)
                                die("too many arguments (see xensim --help)");
                        cli->pos[cli->n_pos++] = a;
                }
        }
}

static void find_exe_dir(Cli *cli)
{
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

        if (n <= 0)
                die("cannot find my own binary: %s", strerror(errno));
        exe[n] = 0;
        fmt_or_die(cli->exe_dir, sizeof(cli->exe_dir), "%s", dirname(exe));
}

static int need_args(const Cli *cli, int n, const char *help)
{
        if (cli->help) {
                fputs(help, stdout);
                exit(0);
        }
        if (cli->n_pos != n) {
                fputs(help, stderr);
                exit(2);
        }
        return 0;
}

int main(int argc, char **argv)
{
        Cli cli = {0};
        const char *env = getenv("XENSIM_DIR");
        const char *cmd;

        find_exe_dir(&cli);
        if (env && *env)
                fmt_or_die(cli.dir, sizeof(cli.dir), "%s", env);
        else
                fmt_or_die(cli.dir, sizeof(cli.dir), "/tmp/xensim-%u", (unsigned)getuid());
        parse(&cli, argc, argv, 1);
        if (cli.n_pos == 0) {
                fputs(help_main, cli.help ? stdout : stderr);
                return cli.help ? 0 : 2;
        }
        cmd = cli.pos[0];
        memmove(cli.pos, cli.pos + 1, sizeof(cli.pos) - sizeof(cli.pos[0]));
        cli.n_pos--;
        if (strcmp(cmd, "up") == 0 && !need_args(&cli, 0, help_up))
                return cmd_up(&cli);
        if (strcmp(cmd, "down") == 0 && !need_args(&cli, 0, help_down))
                return cmd_down(&cli);
        if (strcmp(cmd, "run") == 0) {
                if (cli.help) {
                        fputs(help_run, stdout);
                        return 0;
                }
                if (cli.n_pos != 0)
                        die("run: put the command after '--' (see xensim run --help)");
                return cmd_run(&cli);
        }
        if (strcmp(cmd, "domain") == 0) {
                const char *sub = cli.n_pos ? cli.pos[0] : "";

                if (cli.n_pos)
                        memmove(cli.pos, cli.pos + 1, sizeof(cli.pos) - sizeof(cli.pos[0]));
                cli.n_pos = cli.n_pos ? cli.n_pos - 1 : 0;
                if (strcmp(sub, "create") == 0 && !need_args(&cli, 1, help_domain))
                        return cmd_create(&cli);
                if (strcmp(sub, "destroy") == 0 && !need_args(&cli, 1, help_domain))
                        return cmd_destroy(&cli);
                if (strcmp(sub, "list") == 0 && !need_args(&cli, 0, help_domain))
                        return cmd_list(&cli);
                fputs(help_domain, cli.help ? stdout : stderr);
                return cli.help ? 0 : 2;
        }
        if (cli.help) {
                fputs(help_main, stdout);
                return 0;
        }
        fprintf(stderr, "xensim: unknown command '%s' (see xensim --help)\n", cmd);
        return 2;
}
