<%-- /big?bytes=N: N bytes of 'x' with a Content-Length, written in 64 KiB chunks so nothing large is buffered. --%>
<%@ page session="false" trimDirectiveWhitespaces="true" %>
<%!
    private static final byte[] CHUNK = new byte[64 * 1024];
    static {
        java.util.Arrays.fill(CHUNK, (byte) 'x');
    }
%>
<%
    long n = 0;
    try {
        n = Math.max(0L, Long.parseLong(request.getParameter("bytes")));
    } catch (NumberFormatException e) {
        // missing or bad bytes: empty body
    }
    response.setContentType("application/octet-stream");
    response.setContentLengthLong(n);
    jakarta.servlet.ServletOutputStream os = response.getOutputStream();
    while (n > 0) {
        int k = (int) Math.min(n, CHUNK.length);
        os.write(CHUNK, 0, k);
        n -= k;
    }
%>
