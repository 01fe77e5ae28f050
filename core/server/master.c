/* The master is plain POSIX, without a libuv loop: it blocks its signals and
 * takes them with sigtimedwait, so a fork never happens inside loop
 * callbacks and a worker starts from a clean process state. */
#include "server/master.h"
#include "tls/tickets.h"
#include "util/log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    pid_t pid;
    int id;
    double started;    /* when it was forked (monotonic seconds) */
    double respawn_at; /* 0 = not waiting */
    double backoff;    /* seconds before the next respawn after a quick death */
    int ready;
} slot;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static sigset_t master_set;
static const loom__master_hooks *hooks;

void loom__master_set_hooks(const loom__master_hooks *h)
{
    hooks = h;
}

static pid_t spawn(slot *s, loom__listen_set *ls, loom__worker_main fn, void *arg)
{
    int p[2];
    if (pipe(p) < 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        close(p[0]);
        for (int i = 0; i < ls->nworkers; i++)
            if (i != s->id) loom__listen_set_close_worker(ls, i);
        /* Terminal signals (Ctrl-C) go to the master only, which forwards
         * them once; and a worker does not outlive a killed master. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        sigprocmask(SIG_UNBLOCK, &master_set, NULL);
        loom__log_set_worker(s->id);
        int rc = fn(arg, s->id, loom__listen_set_worker(ls, s->id), p[1]);
        fflush(NULL);
        _exit(rc);
    }
    close(p[1]);
    s->pid = pid;
    s->started = now_s();
    s->respawn_at = 0;
    s->ready = 0;
    /* Wait for the worker to say it serves, or to die trying. */
    char c;
    ssize_t r;
    do r = read(p[0], &c, 1);
    while (r < 0 && errno == EINTR);
    close(p[0]);
    s->ready = r == 1;
    return pid;
}

static void describe(int status, char *buf, size_t len)
{
    if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)%s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
    else
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
}

int loom__master_run(const loom__config *cfg, loom__listen_set *ls, loom__worker_main fn,
                     void (*on_ready)(void *arg), void *arg)
{
    int n = ls->nworkers;
    sigemptyset(&master_set);
    sigaddset(&master_set, SIGCHLD);
    sigaddset(&master_set, SIGTERM);
    sigaddset(&master_set, SIGINT);
    sigaddset(&master_set, SIGQUIT);
    sigaddset(&master_set, SIGHUP);
    sigaddset(&master_set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &master_set, NULL);
    signal(SIGPIPE, SIG_IGN);

    slot *slots = calloc((size_t)n, sizeof *slots);
    if (!slots) return 1;
    int alive = 0, result = 0;
    for (int i = 0; i < n; i++) {
        slots[i].id = i;
        slots[i].backoff = 0.1;
        if (spawn(&slots[i], ls, fn, arg) > 0) alive++;
        if (!slots[i].ready) {
            /* A worker that cannot start will not start on the next try
             * either: stop the rest and report it. */
            loom__err("worker %d failed to start; stopping", i);
            result = 1;
            break;
        }
    }
    int stopping = result != 0, ints = 0;
    double kill_at = 0;
    if (!stopping && on_ready) on_ready(arg);
    if (stopping)
        for (int i = 0; i < n; i++)
            if (slots[i].pid > 0) kill(slots[i].pid, SIGTERM);
    while (alive > 0 || (!stopping)) {
        double t = now_s(), next = t + 0.25;
        for (int i = 0; i < n && !stopping; i++)
            if (slots[i].respawn_at && slots[i].respawn_at < next) next = slots[i].respawn_at;
        if (kill_at && kill_at < next) next = kill_at;
        double wait = next - t;
        if (wait < 0) wait = 0;
        struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        siginfo_t si;
        int sig = sigtimedwait(&master_set, &si, &ts);
        loom__tickets_tick();
        if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT) {
            if (sig == SIGINT) ints++;
            if (!stopping) {
                if (hooks && hooks->on_stop) hooks->on_stop(arg);
                loom__info("%s: stopping %d workers gracefully", strsignal(sig), alive);
                kill_at = now_s() + (double)cfg->shutdown_timeout / 1000.0 + 5.0;
                /* Close our copies so the port stops accepting at once. */
                for (int i = 0; i < n; i++) loom__listen_set_close_worker(ls, i);
            } else if (sig == SIGINT && ints >= 2) {
                loom__warn("second SIGINT: stopping now");
            }
            /* Forward the first stop signal, and a second SIGINT (which
             * means: now); repeats of TERM or QUIT change nothing. */
            int forward = !stopping || (sig == SIGINT && ints >= 2);
            stopping = 1;
            for (int i = 0; i < n && forward; i++)
                if (slots[i].pid > 0) kill(slots[i].pid, sig == SIGQUIT ? SIGTERM : sig);
        } else if (sig == SIGHUP || sig == SIGUSR1) {
            if (hooks && hooks->on_signal) hooks->on_signal(arg, sig);
            if (sig == SIGHUP)
                loom__info("SIGHUP: telling %d workers to rescan plugins", alive);
            else
                loom__info("SIGUSR1: telling %d workers to reopen their log files", alive);
            for (int i = 0; i < n; i++)
                if (slots[i].pid > 0) kill(slots[i].pid, sig);
        }
        /* Reap. */
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int i = 0; i < n; i++) {
                if (slots[i].pid != pid) continue;
                slot *s = &slots[i];
                char how[128];
                describe(status, how, sizeof how);
                s->pid = 0;
                alive--;
                if (stopping) {
                    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                        loom__warn("worker %d (pid %d) %s", i, (int)pid, how);
                        result = 1;
                    }
                    break;
                }
                double lived = now_s() - s->started;
                /* New connections must not queue where nobody accepts. */
                loom__listen_set_close_worker(ls, i);
                if (WIFEXITED(status) && WEXITSTATUS(status) == LOOM__EXIT_CONFIG) {
                    loom__err("worker %d (pid %d) cannot start; stopping", i, (int)pid);
                    result = 1;
                    stopping = 1;
                    kill_at = now_s() + (double)cfg->shutdown_timeout / 1000.0 + 5.0;
                    for (int k = 0; k < n; k++)
                        if (slots[k].pid > 0) kill(slots[k].pid, SIGTERM);
                    break;
                }
                if (hooks && hooks->on_worker_exit) hooks->on_worker_exit(arg, i, status);
                /* Quick deaths back off (0.1 s doubling up to 10 s); a worker
                 * that lived a while is back at once. */
                double delay = 0;
                if (lived < 2.0) {
                    delay = s->backoff;
                    s->backoff = s->backoff * 2 > 10 ? 10 : s->backoff * 2;
                } else {
                    s->backoff = 0.1;
                }
                s->respawn_at = now_s() + delay;
                if (delay > 0)
                    loom__err("worker %d (pid %d) %s; respawning in %.1f s", i, (int)pid, how,
                              delay);
                else
                    loom__err("worker %d (pid %d) %s; respawning now", i, (int)pid, how);
                break;
            }
        }
        if (stopping) {
            if (kill_at && now_s() >= kill_at && alive > 0) {
                loom__warn("workers did not stop in time: killing %d", alive);
                for (int i = 0; i < n; i++)
                    if (slots[i].pid > 0) kill(slots[i].pid, SIGKILL);
                result = 1;
                kill_at = 0;
            }
            continue;
        }
        t = now_s();
        for (int i = 0; i < n; i++) {
            if (!slots[i].respawn_at || slots[i].respawn_at > t) continue;
            char err[256];
            if (loom__listen_set_rebind(ls, i, err, sizeof err)) {
                loom__err("worker %d: %s; trying again in 1 s", i, err);
                slots[i].respawn_at = t + 1.0;
                continue;
            }
            if (spawn(&slots[i], ls, fn, arg) > 0) {
                alive++;
                loom__info("worker %d respawned (pid %d)", i, (int)slots[i].pid);
            } else {
                slots[i].respawn_at = t + 1.0;
            }
        }
    }
    for (int i = 0; i < n; i++) loom__listen_set_close_worker(ls, i);
    free(slots);
    return result;
}
