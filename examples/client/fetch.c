/* The article's first sample: GET a URL and print the response text.
 *
 *   async with aiohttp.ClientSession() as session:
 *       async with session.get(url) as response:
 *           return await response.text()
 *
 * usage: client_fetch URL */
#include <loom/client.h>

#include <stdio.h>

static int status = 1;

static void on_done(loom_client_response *resp, void *ud)
{
    (void)ud;
    if (loom_client_response_error(resp)) {
        fprintf(stderr, "%s\n", loom_client_response_message(resp));
    } else {
        size_t len;
        const char *text = loom_client_response_body(resp, &len);
        fwrite(text, 1, len, stdout);
        putchar('\n');
        status = 0;
    }
    loom_client_response_free(resp);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s URL\n", argv[0]);
        return 2;
    }
    uv_loop_t *loop = uv_default_loop();
    loom_client *session = loom_client_new(loop, NULL); /* the ClientSession */
    loom_client_send(session, "GET", argv[1], NULL, on_done, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    loom_client_close(session); /* leaving "async with" */
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return status;
}
