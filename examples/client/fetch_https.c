/* The article's first sample over HTTPS: GET a URL and print the text, the
 * server verified against the system's CAs (or the CA bundle given).
 *
 *   ssl_ctx = ssl.create_default_context(cafile=cafile)
 *   async with aiohttp.ClientSession() as session:
 *       async with session.get(url, ssl=ssl_ctx) as response:
 *           return await response.text()
 *
 * usage: client_fetch_https https://URL [CA_FILE] */
#include <loom/client.h>

#include <stdio.h>
#include <string.h>

static int status = 1;

static void on_done(loom_client_response *resp, void *ud)
{
    (void)ud;
    int err = loom_client_response_error(resp);
    const char *version = NULL;
    if (err && loom_client_is_tls_error(err)) {
        /* aiohttp.ClientConnectorCertificateError / ClientSSLError */
        fprintf(stderr, "TLS problem: %s\n", loom_client_response_message(resp));
    } else if (err) {
        fprintf(stderr, "%s\n", loom_client_response_message(resp));
    } else {
        loom_client_response_tls(resp, &version, NULL);
        fprintf(stderr, "(%s)\n", version ? version : "not over TLS");
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
    if (argc < 2 || argc > 3 || strncmp(argv[1], "https://", 8) != 0) {
        fprintf(stderr, "usage: %s https://URL [CA_FILE]\n", argv[0]);
        return 2;
    }
    loom_client_config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (argc == 3) cfg.tls.ca_file = argv[2]; /* else: the system's trust store */
    uv_loop_t *loop = uv_default_loop();
    loom_client *session = loom_client_new(loop, &cfg);
    loom_client_send(session, "GET", argv[1], NULL, on_done, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    loom_client_close(session);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return status;
}
