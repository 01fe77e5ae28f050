/* The article's asyncio.gather sample: fetch many URLs at once over one
 * session (one connection pool), then print the pages in the given order.
 *
 *   async with aiohttp.ClientSession() as session:
 *       tasks = [fetch(url) for url in urls]
 *       return await asyncio.gather(*tasks)
 *
 * usage: client_fetch_all URL... */
#include <loom/client.h>

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    loom_client_response *resp; /* the "result" of one task */
} task;

static void on_done(loom_client_response *resp, void *ud)
{
    ((task *)ud)->resp = resp;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s URL...\n", argv[0]);
        return 2;
    }
    int n = argc - 1, status = 0;
    task *tasks = calloc((size_t)n, sizeof *tasks);
    uv_loop_t *loop = uv_default_loop();
    loom_client *session = loom_client_new(loop, NULL);
    for (int i = 0; i < n; i++) /* all in flight at once */
        loom_client_send(session, "GET", argv[i + 1], NULL, on_done, &tasks[i]);
    uv_run(loop, UV_RUN_DEFAULT); /* gather: returns when every task is done */
    for (int i = 0; i < n; i++) {
        loom_client_response *r = tasks[i].resp;
        if (loom_client_response_error(r)) {
            fprintf(stderr, "%s\n", loom_client_response_message(r));
            status = 1;
        } else {
            size_t len;
            const char *html = loom_client_response_body(r, &len);
            fwrite(html, 1, len, stdout);
            putchar('\n');
        }
        loom_client_response_free(r);
    }
    free(tasks);
    loom_client_close(session);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return status;
}
