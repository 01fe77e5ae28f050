/* The article's error-handling sample, with the blocking call.
 *
 *   response.raise_for_status()
 *   except aiohttp.ClientResponseError as e:
 *       print(f"HTTP error occurred: {e.status} - {e.message}")
 *   except aiohttp.ClientConnectionError:
 *       print("Network connection error.")
 *   except Exception as e:
 *       print(f"An unexpected error occurred: {e}")
 *
 * usage: client_error_handling URL */
#include <loom/client.h>

#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s URL\n", argv[0]);
        return 2;
    }
    loom_client_opts opts = {.raise_for_status = 1};
    loom_client_response *resp;
    int e = loom_client_fetch_sync("GET", argv[1], &opts, NULL, &resp);
    int status = e ? 1 : 0;
    if (e == LOOM_CLIENT_E_STATUS) {
        printf("HTTP error occurred: %d - %s\n", loom_client_response_status(resp),
               loom_client_response_reason(resp));
    } else if (loom_client_is_connection_error(e)) {
        printf("Network connection error.\n");
    } else if (e) {
        printf("An unexpected error occurred: %s\n", loom_client_response_message(resp));
    } else {
        size_t len;
        const char *html = loom_client_response_body(resp, &len);
        fwrite(html, 1, len, stdout);
        putchar('\n');
    }
    loom_client_response_free(resp);
    return status;
}
