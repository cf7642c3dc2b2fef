/* The pod sandbox's process ("pause"): holds the pod's namespaces, reaps
 * the zombies it inherits as PID 1 of a pod that shares its PID namespace,
 * and ends on SIGINT or SIGTERM. Built statically into the pause image of
 * tests/cluster (no registry here to pull the upstream one from). */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig)
{
    (void)sig;
    _exit(0);
}

static void reap(int sig)
{
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

int main(void)
{
    struct sigaction q = {.sa_handler = quit};
    struct sigaction r = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
    if (sigaction(SIGINT, &q, NULL) < 0 || sigaction(SIGTERM, &q, NULL) < 0 ||
        sigaction(SIGCHLD, &r, NULL) < 0)
        return 1;
    for (;;)
        pause();
}
