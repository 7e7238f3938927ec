<%-- /echo (any method): streams the request body back unchanged, with the same Content-Type (and Content-Length if known).
     transferTo copies in small chunks, so 10 MiB+ bodies are never held in memory. --%>
<%@ page session="false" trimDirectiveWhitespaces="true" %>
<%!
    // Jasper's generated _jspService answers 405 to anything but GET/HEAD/POST/OPTIONS, and /echo must take PUT,
    // PATCH, DELETE too. HttpJspBase only finalizes service(HttpServletRequest, ...), so the generic Servlet entry
    // point can be overridden here; the page body below is then never used.
    @Override
    public void service(jakarta.servlet.ServletRequest req, jakarta.servlet.ServletResponse res)
            throws java.io.IOException {
        res.setContentType(req.getContentType());
        long n = req.getContentLengthLong();
        if (n >= 0) {
            res.setContentLengthLong(n);
        }
        req.getInputStream().transferTo(res.getOutputStream());
    }
%>
