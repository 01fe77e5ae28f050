/* The article's timeout sample: a session with a total timeout of 5 s.
 *
 *   timeout = aiohttp.ClientTimeout(total=5)
 *   async with aiohttp.ClientSession(timeout=timeout) as session: ...
 *   except asyncio.TimeoutError:
 *       print("The request timed out.")
 *
 * usage: client_fetch_with_timeout URL [SECONDS]   (default 5) */
#include <loom/client.h>

#include <stdio.h>
#include <stdlib.h>

static int status = 1;

static void on_done(loom_client_response *resp, void *ud)
{
    (void)ud;
    int e = loom_client_response_error(resp);
    if (loom_client_is_timeout(e)) { /* total, connect or read: asyncio.TimeoutError */
        printf("The request timed out.\n");
    } else if (e) {
        printf("Client error: %s\n", loom_client_response_message(resp));
    } else {
        size_t len;
        const char *html = loom_client_response_body(resp, &len);
        fwrite(html, 1, len, stdout);
        putchar('\n');
        status = 0;
    }
    loom_client_response_free(resp);
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: %s URL [SECONDS]\n", argv[0]);
        return 2;
    }
    loom_client_config cfg = {.total_timeout = argc == 3 ? atof(argv[2]) : 5};
    uv_loop_t *loop = uv_default_loop();
    loom_client *session = loom_client_new(loop, &cfg);
    loom_client_send(session, "GET", argv[1], NULL, on_done, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    loom_client_close(session);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return status;
}
